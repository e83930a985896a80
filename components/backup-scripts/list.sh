# The dumps of the stack, newest first, one line each: file, image ID, reference
# (from its .image file; "unknown" where that is missing).
cd "$(stack_dir)" 2>/dev/null || exit 0
dumps | sort -r | while read -r f; do
    printf '%s %s %s\n' "$f" "$(sed -n 1p "${f%.dump}.image" 2>/dev/null || true)" "$(sed -n 2p "${f%.dump}.image" 2>/dev/null || true)"
done
