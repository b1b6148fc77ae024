//! Experiment specs: the shipped ones parse, bad ones are refused with the field named, run
//! ids are stable, and shards partition the runs.

use std::collections::HashSet;

use basin_lab::exec::jobs::Job;
use basin_lab::exec::shards::Shard;
use basin_lab::kinds::{attack_set, temporal};
use basin_lab::spec::{BUILTIN, ExperimentSpec, Kind, RunKey};

fn fig3() -> ExperimentSpec {
    ExperimentSpec::load("fig3-mnist").unwrap()
}

/// The runs of an attack-set spec.
fn keys_of(spec: &ExperimentSpec) -> Vec<RunKey> {
    attack_set::run_keys(spec)
}

#[test]
fn the_shipped_specs_parse() {
    for (name, _) in BUILTIN {
        let spec = ExperimentSpec::load(name).unwrap();
        assert_eq!(spec.name, name);
        if name.starts_with("fig3") {
            assert_eq!(keys_of(&spec).len(), 55, "{name}: 11 sizes × 5 networks");
        }
    }
    let s = fig3();
    assert_eq!((s.data.train_size, s.data.test_size), (500, 1000));
    assert!(s.measures.sharpness.is_some() && s.measures.prior.is_some());
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let text = BUILTIN[0].1;
    let cases = [
        (text.replace("train_size", "trian_size"), "trian_size"),
        (text.replace("lr = 0.01", "lr = -1.0"), "training.optimizer"),
        (text.replace("[0, 50,", "[50, 0,"), "attack_sizes"),
        (text.replace("top_k = 50", "top_k = 0"), "hessian"),
        (
            text.replace("source = \"mnist\"", "source = \"nope:x\""),
            "data.source",
        ),
        (text.replace("delta = 0.05", "delta = 2.0"), "delta"),
        (text.replace("kind = \"sgd\"", "kind = \"sgdd\""), "sgdd"),
    ];
    for (bad, needle) in cases {
        let err = ExperimentSpec::from_toml(&bad, "test.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml") && err.contains(needle),
            "{needle}: {err}"
        );
    }
    let err = ExperimentSpec::load("/no/such.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("fig3-mnist"), "lists the built-ins: {err}");
}

/// Ids and seeds survive adding attack sizes or replicates; any setting that changes a
/// result changes every id.
#[test]
fn run_ids_are_stable() {
    let base = fig3();
    let runs = keys_of(&base);
    let ids: HashSet<_> = runs.iter().map(|r| r.id.clone()).collect();
    let seeds: HashSet<_> = runs.iter().map(|r| r.seed).collect();
    assert_eq!((ids.len(), seeds.len()), (55, 55), "unique");
    assert_eq!(keys_of(&base), runs, "deterministic");

    let mut more = base.clone();
    more.data.attack_sizes.push(600);
    more.data.networks_per_size = 6;
    more.description = "edited".into();
    let extended = keys_of(&more);
    assert_eq!(extended.len(), 12 * 6);
    for r in &runs {
        assert!(extended.contains(r), "{} kept", r.id);
    }

    let mut other = base.clone();
    other.training.batch_size = 64;
    assert!(keys_of(&other).iter().all(|r| !ids.contains(&r.id)));
    let mut reseeded = base;
    reseeded.seed = 2;
    assert!(keys_of(&reseeded).iter().all(|r| !seeds.contains(&r.seed)));
}

#[test]
fn shards_partition_the_runs() {
    let runs = keys_of(&fig3());
    let shards: Vec<Shard> = (1..=4).map(|k| format!("{k}/4").parse().unwrap()).collect();
    for r in &runs {
        assert_eq!(shards.iter().filter(|s| s.holds(&r.id)).count(), 1);
    }
    for s in &shards {
        let n = runs.iter().filter(|r| s.holds(&r.id)).count();
        assert!((5..=25).contains(&n), "balanced enough: {n}");
    }
    for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

/// The shipped fig3 spec keeps the ids of the runs stored before variants existed.
#[test]
fn fig3_ids_are_those_stored_before() {
    assert_eq!(keys_of(&fig3())[0].id, "fig3-mnist-1d8170a3ec46-a0-r0");
}

/// The `[measures.prior] reference` of a spec that has one.
fn smc_reference(spec: &ExperimentSpec) -> &basin_lab::spec::SmcSpec {
    let prior = spec.measures.prior.as_ref().expect("a [measures.prior]");
    prior.reference.as_ref().expect("a reference")
}

/// fig3-mnist-exact is fig3-mnist plus the SMC reference: the same networks (seeds), its own
/// ids; a bad reference is refused with its section named.
#[test]
fn fig3_exact_adds_the_reference_to_the_same_runs() {
    let exact = ExperimentSpec::load("fig3-mnist-exact").unwrap();
    let r = smc_reference(&exact);
    assert_eq!((r.particles, r.replicates, r.moves), (128, 4, None));
    assert_eq!(r.mover, basin_prior::smc::SmcMover::ExactHmc);
    let cfg = r.config(7);
    let tuned = basin_prior::smc::SmcConfig::for_mover(basin_prior::smc::SmcMover::ExactHmc);
    assert_eq!(cfg.mover, basin_prior::smc::SmcMover::ExactHmc);
    assert_eq!(
        (
            cfg.moves,
            cfg.ess_fraction,
            cfg.trajectory_time,
            cfg.pilot_schedule
        ),
        (tuned.moves, tuned.ess_fraction, tuned.trajectory_time, true)
    );
    let (a, b) = (keys_of(&fig3()), keys_of(&exact));
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.seed == y.seed && x.id != y.id)
    );
    let text = basin_lab::spec::BUILTIN
        .iter()
        .find(|(n, _)| *n == "fig3-mnist-exact")
        .unwrap()
        .1
        .replace("replicates = 4", "replicates = 1");
    let err = ExperimentSpec::from_toml(&text, "test.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("measures.prior.reference"), "{err}");
    // The slice mover by its short name; it is a different reference, so other ids.
    let builtin = basin_lab::spec::BUILTIN
        .iter()
        .find(|(n, _)| *n == "fig3-mnist-exact")
        .unwrap()
        .1;
    let slice =
        ExperimentSpec::from_toml(&builtin.replace("\"hmc\"", "\"slice\""), "s.toml").unwrap();
    let rs = smc_reference(&slice);
    assert_eq!(
        rs.config(7).mover,
        basin_prior::smc::SmcMover::EllipticalSlice
    );
    assert!(keys_of(&slice).iter().zip(&b).all(|(x, y)| x.id != y.id));
    // Ids hash the schedule as run: stating the mover's defaults keeps them, another ESS
    // fraction changes them.
    let with = |extra: &str| {
        let text = builtin.replace("mover = \"hmc\"", &format!("mover = \"hmc\", {extra}"));
        keys_of(&ExperimentSpec::from_toml(&text, "x.toml").unwrap())
    };
    let stated = with("moves = 1, ess_fraction = 0.97, trajectory_time = 0.7853981633974483");
    assert!(stated.iter().zip(&b).all(|(x, y)| x.id == y.id));
    let other = with("ess_fraction = 0.9");
    assert!(other.iter().zip(&b).all(|(x, y)| x.id != y.id));
    let bad = builtin.replace("mover = \"hmc\"", "mover = \"hmc\", ess_fraction = 1.0");
    let err = ExperimentSpec::from_toml(&bad, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ess_fraction"), "{err}");
}

/// Optimizers compared share seeds and have their own ids; checkpoints multiply the runs.
#[test]
fn variant_specs_expand() {
    let fig4 = ExperimentSpec::load("fig4-optimizers").unwrap();
    let runs = keys_of(&fig4);
    assert_eq!(runs.len(), 7 * 6 * 4);
    let ids: HashSet<_> = runs.iter().map(|r| &r.id).collect();
    let seeds: HashSet<_> = runs.iter().map(|r| r.seed).collect();
    assert_eq!((ids.len(), seeds.len()), (168, 24));
    assert!(runs.iter().any(|r| r.variant == "entropy_sgd"));
    let over = keys_of(&ExperimentSpec::load("overtrain-mnist").unwrap());
    assert_eq!(over.len(), 2 * 6 * 4 * 3);
    assert_eq!(
        Job::group(over).len(),
        2 * 6 * 4,
        "one training run per optimizer, size and network"
    );
    let fig5 = ExperimentSpec::load("fig5-temporal").unwrap();
    let Kind::Temporal(table) = &fig5.kind else {
        panic!("fig5-temporal is temporal: {:?}", fig5.kind)
    };
    let t = temporal::run_keys(&fig5, table);
    assert_eq!(t.len(), 4);
    assert!(t.iter().all(|r| r.seed == t[0].seed && r.alpha.is_some()));
}

#[test]
fn bad_variant_settings_are_named() {
    let text = BUILTIN[0].1;
    let opt = "optimizer = { kind = \"sgd\", lr = 0.01 }";
    let cases = [
        (
            text.replace(opt, &format!("{opt}\noptimizers = [{{ kind = \"adam\" }}]")),
            "either optimizer or optimizers",
        ),
        (
            text.replace(
                opt,
                "optimizers = [{ kind = \"adam\" }, { kind = \"adam\" }]",
            ),
            "each kind at most once",
        ),
        (
            text.replace(opt, &format!("{opt}\nmeasure_at = [10, 5]")),
            "ascending",
        ),
        (
            text.replace(
                opt,
                &format!("{opt}\nmeasure_at = [0, 5]\novertrain_epochs = 3"),
            ),
            "overtrain_epochs or measure_at",
        ),
        (
            format!("{text}\n[temporal]\nalphas = [2.0]\n"),
            "attack_sizes = [0]",
        ),
        (
            format!("{text}\n[temporal]\nalphas = [-2.0]\n"),
            "temporal.alphas",
        ),
    ];
    for (bad, needle) in cases {
        let err = ExperimentSpec::from_toml(&bad, "test.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

/// The kind of a spec is its kind table; a spec with two kind tables is refused with both
/// named, and a spec written back to TOML keeps its kind.
#[test]
fn the_kind_is_the_kind_table() {
    let kind_of = |name: &str| {
        let spec = ExperimentSpec::load(name).unwrap();
        let again = ExperimentSpec::from_toml(&toml::to_string(&spec).unwrap(), name).unwrap();
        assert_eq!(again, spec, "{name} round-trips");
        std::mem::discriminant(&spec.kind)
    };
    let d = std::mem::discriminant;
    assert_eq!(kind_of("fig3-mnist"), d(&Kind::AttackSet));
    assert!(matches!(
        ExperimentSpec::load("fig5-temporal").unwrap().kind,
        Kind::Temporal(_)
    ));
    assert!(matches!(
        ExperimentSpec::load("fig2-boolean").unwrap().kind,
        Kind::Boolean(_)
    ));
    assert!(matches!(
        ExperimentSpec::load("ep-accuracy").unwrap().kind,
        Kind::EpAccuracy(_)
    ));
    for name in ["fig5-temporal", "fig2-boolean", "ep-accuracy"] {
        kind_of(name);
    }
    let ep = BUILTIN.iter().find(|b| b.0 == "ep-accuracy").unwrap().1;
    let err = ExperimentSpec::from_toml(&format!("{ep}\n[temporal]\n"), "two.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("two.toml") && err.contains("[temporal]") && err.contains("[ep_accuracy]"),
        "{err}"
    );
}

/// `--quick`: three attack sizes and two networks for every kind, and each kind's own
/// reduction; the attack-set runs keep their ids.
#[test]
fn quick_reduces_each_kind() {
    let quick = |name: &str| {
        let spec = ExperimentSpec::load(name).unwrap();
        let reduced = basin_lab::kinds::experiment(&spec).quick();
        reduced.validate().unwrap();
        (spec, reduced)
    };
    let (full, q) = quick("fig3-mnist");
    assert_eq!(q.data.attack_sizes, [0, 250, 500]);
    assert_eq!(q.data.networks_per_size, 2);
    let ids: HashSet<String> = keys_of(&full).into_iter().map(|k| k.id).collect();
    assert!(keys_of(&q).iter().all(|k| ids.contains(&k.id)));
    let (full, q) = quick("fig5-temporal");
    let (Kind::Temporal(a), Kind::Temporal(b)) = (&full.kind, &q.kind) else {
        panic!("temporal")
    };
    assert_eq!(
        (b.overtrain_epochs, b.scale_after),
        (a.overtrain_epochs / 5, a.scale_after / 5)
    );
    let (_, q) = quick("fig2-boolean");
    let Kind::Boolean(b) = &q.kind else {
        panic!("boolean")
    };
    assert_eq!((b.samples, b.top_k), (1_000_000, 100));
    let (full, q) = quick("ep-accuracy");
    assert_eq!(q.kind, full.kind);
}

/// `[network]` takes `hidden` (a fully-connected net) or `arch` (a ResNet), not both; an
/// unknown architecture, augmentation of a fully-connected net and a ResNet in a kind that
/// trains fully-connected nets only are refused with the field named.
#[test]
fn a_network_is_hidden_or_arch() {
    let text = BUILTIN[0].1;
    let with_arch = |arch: &str| text.replace("hidden = [40, 40]", &format!("arch = {arch:?}"));
    let kernel = "\n[measures.prior.mc_kernel]\nsamples = 16\n";
    let err = ExperimentSpec::from_toml(&with_arch("basic:1,1:8"), "r.toml").unwrap_err();
    assert!(
        err.to_string().contains("measures.prior.mc_kernel"),
        "{err}"
    );
    let resnet = ExperimentSpec::from_toml(&(with_arch("basic:1,1:8") + kernel), "r.toml").unwrap();
    let arch = resnet.network.arch.as_ref().expect("a ResNet");
    assert_eq!(basin_lab::spec::arch_name(arch), "basic:1,1:8");
    assert!(resnet.network.hidden.is_empty());
    let ids: HashSet<String> = keys_of(&fig3()).into_iter().map(|k| k.id).collect();
    assert!(keys_of(&resnet).iter().all(|k| !ids.contains(&k.id)));
    let fig5 = BUILTIN.iter().find(|b| b.0 == "fig5-temporal").unwrap().1;
    let fig2 = BUILTIN.iter().find(|b| b.0 == "fig2-boolean").unwrap().1;
    let cases = [
        (
            text.replace(
                "hidden = [40, 40]",
                "hidden = [40, 40]\narch = \"resnet18\"",
            ),
            "network.hidden and network.arch",
        ),
        (with_arch("resnet19"), "network.arch"),
        (with_arch("basic:0:8"), "network.arch"),
        (
            text.replace("max_epochs = 50000", "max_epochs = 50000\naugment = true"),
            "training.augment",
        ),
        (
            fig5.replace("hidden = [40, 40]", "arch = \"resnet18\""),
            "network.arch",
        ),
        (
            fig2.replace("hidden = [40, 40]", "arch = \"resnet18\""),
            "network.arch",
        ),
    ];
    for (bad, needle) in cases {
        assert_ne!(bad, text);
        let err = ExperimentSpec::from_toml(&bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.toml") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

/// The ResNet fields serialise only when given, so the settings hashes (and the run ids) of
/// fully-connected specs are those they had before ResNets existed; ResNet specs round-trip.
#[test]
fn fully_connected_specs_hash_as_before() {
    let net = serde_json::to_string(&fig3().network).unwrap();
    assert_eq!(
        net,
        r#"{"hidden":[40,40],"activation":"relu","sigma_w":1.4142135623730951,"sigma_b":1.0}"#
    );
    for (name, _) in BUILTIN {
        let spec = ExperimentSpec::load(name).unwrap();
        let again = ExperimentSpec::from_toml(&toml::to_string(&spec).unwrap(), name).unwrap();
        assert_eq!(again, spec, "{name} round-trips");
        let json = serde_json::to_string(&spec).unwrap();
        if spec.network.arch.is_none() {
            assert!(
                !json.contains("\"arch\"") && !json.contains("\"augment\""),
                "{name}"
            );
        }
    }
    let r50 = ExperimentSpec::load("fig3-resnet50-cifar").unwrap();
    let arch = r50.network.arch.as_ref().unwrap();
    assert_eq!(basin_lab::spec::arch_name(arch), "resnet50");
    assert!(r50.training.augment);
    let adam = ExperimentSpec::load("figS17-resnet50-adam").unwrap();
    assert_eq!(adam.training.optimizer_list()[0].name(), "adam");
    assert_eq!(
        (adam.data.clone(), adam.network.clone()),
        (r50.data.clone(), r50.network.clone()),
        "the same S, A, T and network"
    );
}

/// figS19-fashion-10k is figure 3 with |S| = 10,000 on Fashion-MNIST: fig3-mnist's network,
/// training and measures, the folder form of the IDX source (T from its test files), attack
/// sizes 0 to |S| in ten steps, and `--quick` (its `[quick]` table) at |S| = 1,000 with attack
/// sizes 0, 500 and 1,000. Where Debian's
/// dataset-fashion-mnist is installed, the split is checked on the real files.
#[test]
fn figs19_is_fig3_with_ten_thousand_fashion_examples() {
    let s19 = ExperimentSpec::load("figS19-fashion-10k").unwrap();
    let fig3 = fig3();
    assert_eq!(
        (&s19.network, &s19.training, &s19.measures, s19.seed),
        (&fig3.network, &fig3.training, &fig3.measures, fig3.seed)
    );
    let source: basin_data::DataSource = s19.data.source.parse().unwrap();
    assert_eq!(source.to_string(), "idx:/usr/share/datasets/fashion-mnist");
    assert!(matches!(source, basin_data::DataSource::IdxDir { .. }));
    assert_eq!(s19.data.class_map, "0-4:0,5-9:1");
    assert_eq!((s19.data.train_size, s19.data.test_size), (10_000, 1_000));
    let sizes: Vec<usize> = (0..=10).map(|i| i * 1_000).collect();
    assert_eq!(s19.data.attack_sizes, sizes);
    assert_eq!(s19.data.split, fig3.data.split);
    assert_eq!(keys_of(&s19).len(), 55);
    let quick = basin_lab::kinds::experiment(&s19).quick();
    assert_eq!(quick.data.attack_sizes, [0, 500, 1_000]);
    assert_eq!(
        (quick.data.train_size, quick.data.test_size),
        (1_000, 1_000)
    );
    assert_eq!(quick.quick, None);
    assert_eq!(keys_of(&quick).len(), 6);

    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("t10k-labels-idx1-ubyte.gz").exists() {
        eprintln!(
            "SKIPPED: {} is absent; install Debian's dataset-fashion-mnist",
            dir.display()
        );
        return;
    }
    // The split alone: without the prior no kernel is computed.
    let mut light = s19.clone();
    light.measures.prior = None;
    light.measures.bounds = None;
    let prep = basin_lab::prepare::Prepared::new(&light).unwrap();
    let split = &prep.split;
    assert_eq!(
        (split.train.len(), split.attack.len(), split.test.len()),
        (10_000, 10_000, 1_000)
    );
    assert_eq!(split.indices.test_source, basin_data::TestSource::Separate);
    assert_eq!(split.indices.test, (0..1_000).collect::<Vec<_>>());
    let test = basin_data::idx::load(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    assert_eq!(split.test.features(), &test.features()[..1_000 * 784]);
    let classes = &test.class_ids().unwrap()[..1_000];
    let binary: Vec<u8> = classes.iter().map(|&c| u8::from(c >= 5)).collect();
    assert_eq!(split.test.labels(), Some(&binary[..]));
    for set in [&split.train, &split.attack, &split.test] {
        let counts = set.class_counts();
        assert!(
            counts.values().all(|&c| c > 300),
            "both classes: {counts:?}"
        );
    }
}

/// A `[quick]` table sets the sizes of `--quick` and stays out of the full run's ids; an
/// empty or invalid quick form is refused at load with the field named.
#[test]
fn a_quick_table_sets_the_quick_sizes_and_leaves_the_full_ids_alone() {
    let fig3 = fig3();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fig3-mnist.toml"),
    )
    .unwrap();
    let with = |table: &str| ExperimentSpec::from_toml(&format!("{text}\n{table}"), "t.toml");
    let spec = with("[quick]\ntrain_size = 100\nattack_sizes = [0, 20, 40, 60]\n").unwrap();
    assert_eq!(spec.settings_id(), fig3.settings_id());
    assert_eq!(keys_of(&spec), keys_of(&fig3));
    let quick = spec.quick_sizes();
    assert_eq!(
        (quick.data.train_size, quick.data.test_size),
        (100, fig3.data.test_size)
    );
    assert_eq!(quick.data.attack_sizes, [0, 40, 60]);
    assert_ne!(quick.settings_id(), fig3.settings_id());
    let err = with("[quick]\nattack_sizes = []\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("quick.attack_sizes"), "{err}");
    let err = with("[quick]\ntrain_size = 0\n").unwrap_err().to_string();
    assert!(err.contains("--quick form"), "{err}");
    let err = with("[quick]\nsamples = 3\n").unwrap_err().to_string();
    assert!(err.contains("samples"), "{err}");
}
