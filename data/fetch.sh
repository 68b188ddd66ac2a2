# Sourced by the download scripts: fetch URL FILE downloads resumably (FILE.part),
# and skips FILE when it is already complete.
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
