# Sourced by the download scripts: where PaddleVideo's ActBERT files live, enter_target
# DIR DEFAULT (create and enter the target folder), and fetch URL FILE, which downloads
# resumably (FILE.part) and skips FILE when it is already complete.
BASE=https://videotag.bj.bcebos.com/Data/ActBERT
VOCAB_URL=https://paddle-hapi.bj.bcebos.com/models/bert/bert-base-uncased-vocab.txt

enter_target() {
    local target=${1:-$2}
    mkdir -p "$target"
    cd "$target"
}

fetch() {
    local url=$1 file=$2
    if [ -s "$file" ] && [ ! -e "$file.part" ]; then
        echo "have $file"; return
    fi
    echo "downloading $url"
    if command -v wget >/dev/null; then
        wget -c -O "$file.part" "$url"
    else
        curl -fL -C - -o "$file.part" "$url"
    fi
    mv "$file.part" "$file"
}
