//! What a path is, in words, for messages that refuse it ("is a character
//! device, not a folder").

/// The kind of a file system entry: "a folder", "a regular file",
/// "a character device", "a block device", "a pipe" or "a socket".
pub(crate) fn kind_name(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a pipe"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "an unknown kind of file"
    }
}
