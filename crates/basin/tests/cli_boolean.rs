//! `basin boolean sample` end to end: the JSON keys, the CSV frequency table and the plots,
//! independence of the thread count, and bad input.

mod common;

use common::{basin, json};

#[test]
fn sample_writes_json_csv_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("freq.csv");
    let plots = dir.path().join("plots");
    let (csv_s, plots_s) = (csv.to_str().unwrap(), plots.to_str().unwrap());
    let v = json(&[
        "boolean",
        "sample",
        "--samples",
        "5_000",
        "--seed",
        "3",
        "--top",
        "4",
        "--out",
        csv_s,
        "--plots",
        plots_s,
        "--json",
        "--threads",
        "2",
    ]);
    assert_eq!(v["samples"], 5000);
    let distinct = v["distinct"].as_u64().unwrap();
    assert!(distinct > 100 && distinct < 5000, "distinct {distinct}");
    assert!(v["samples_per_second"].as_f64().unwrap() > 0.0);
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 4);
    for row in top {
        assert_eq!(row["function"].as_str().unwrap().len(), 32);
        let p = row["probability"].as_f64().unwrap();
        assert_eq!(p, row["count"].as_f64().unwrap() / 5000.0);
        assert!(row["ci_low"].as_f64().unwrap() < p && p < row["ci_high"].as_f64().unwrap());
    }
    // The two constants lead, about a quarter each.
    let leaders: Vec<&str> = top[..2]
        .iter()
        .map(|r| r["function"].as_str().unwrap())
        .collect();
    assert!(leaders.contains(&"00000000000000000000000000000000"));
    assert!(leaders.contains(&"ffffffffffffffffffffffffffffffff"));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "rank,function,count,probability,ci_low,ci_high,ones,lz_complexity"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, distinct);
    let total: u64 = rows.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 5000);
    assert_eq!(rows[0][1], top[0]["function"].as_str().unwrap());
    let counts: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by count");
    for name in ["rank_frequency", "prior_vs_lz"] {
        for ext in ["png", "svg"] {
            let p = plots.join(format!("{name}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    // Same seed on one thread: the same table.
    let one = json(&[
        "boolean",
        "sample",
        "--samples",
        "5000",
        "--seed",
        "3",
        "--top",
        "4",
        "--json",
        "--threads",
        "1",
    ]);
    assert_eq!(one["top"], v["top"]);
    assert_eq!(one["distinct"], v["distinct"]);
}

#[test]
fn bad_arguments_are_explained() {
    let err = |args: &[&str]| {
        let out = basin(args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(&["boolean", "sample", "--samples", "0"]).contains("--samples"));
    assert!(err(&["boolean", "sample", "--samples", "ten"]).contains("whole number"));
    assert!(
        err(&["boolean", "sample", "--samples", "10", "--hidden", "none"]).contains("hidden layer")
    );
    assert!(err(&["boolean", "sample", "--samples", "10", "--sigma-w", "nan"]).contains("sigma_w"));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/freq.csv");
    assert!(
        err(&[
            "boolean",
            "sample",
            "--samples",
            "10",
            "--out",
            missing.to_str().unwrap()
        ])
        .contains("--out")
    );
}
