//! Tells the binary whether openh264 could use its assembly (nasm on the PATH at build time).
fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("nasm").is_file()))
        .unwrap_or(false);
    println!(
        "cargo:rustc-env=HLS_BUILT_WITH_NASM={}",
        if found { "1" } else { "0" }
    );
}
