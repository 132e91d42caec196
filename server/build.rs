//! The page in `www/` is built into the binary (see `web::site`): a file added to or removed
//! from it must rebuild the server, which the files' own tracking does not cover.

fn main() {
    println!("cargo:rerun-if-changed=../www");
}
