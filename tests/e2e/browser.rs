//! The page in a real headless Chromium, driven through chromedriver: the whole path from the
//! wasm client over the WebSocket bridge to the TCP picture server.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use picture_protocol::PictureInfo;
use picture_server::Limits;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::common::*;

/// Chromium and chromedriver as packaged by Debian (`scripts/setup-web` installs them); the
/// `CHROMIUM` and `CHROMEDRIVER` environment variables point elsewhere.
fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// A chromedriver process and one browser session.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Chromium is chromedriver's child: when a test fails before closing its session, killing
    /// chromedriver alone would leave the browser running. Both share a process group of their
    /// own, so this ends them all.
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

impl Browser {
    async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// A browser started with more command-line switches.
    async fn start_with(switches: &[String]) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let chromedriver = program("CHROMEDRIVER", "chromedriver");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .env("TMPDIR", profile.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {chromedriver} (scripts/setup-web installs it): {e}")
            });
        // Headless as root, and no attempts to reach the internet: no background networking,
        // component updates or sync.
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1100,900".to_owned(),
            format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ),
        ];
        args.extend_from_slice(switches);
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": program("CHROMIUM", "/usr/bin/chromium"),
                "args": args,
            }
        });
        let Value::Object(capabilities) = capabilities else {
            panic!("capabilities are an object");
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = within(async {
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => return client,
                    // chromedriver needs a moment to start listening.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
        .await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Runs `script` (a function body that returns a value) in the page.
    async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Waits until `script` returns true.
    async fn wait_until(&self, what: &str, script: &str) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                if self.eval(script).await == Value::Bool(true) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if waited.is_err() {
            let state = self.eval(DESCRIBE_PAGE).await;
            panic!("timed out waiting for {what}; page: {state}");
        }
    }

    async fn choose(&self, number: u32) {
        let select = self
            .client
            .find(Locator::Css("select#picture"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        select
            .select_by_value(&number.to_string())
            .await
            .unwrap_or_else(|e| panic!("choosing {number}: {e}"));
    }

    /// Types `text` into the element `css` selects.
    async fn type_into(&self, css: &str, text: &str) {
        self.element(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks the element `css` selects.
    async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// Waits until the page shows picture `name` with `state` (`ok` or `not-found`).
    async fn wait_for_picture(&self, name: &str, state: &str) {
        let script = format!(
            "const img = document.querySelector('img#view'); \
             const status = document.querySelector('#status'); \
             return img.dataset.name === {name:?} && status.dataset.state === {state:?} \
                 && img.complete && img.naturalWidth > 0;"
        );
        self.wait_until(&format!("{name} ({state})"), &script).await;
    }

    /// The shown picture's `src` and natural size.
    /// "alive" if a blob: URL still loads as a picture, "revoked" if it does not. (An image,
    /// not fetch: the page's policy lets images, not connections, use blob: URLs.)
    async fn object_url_state(&self, url: &str) -> String {
        let state = self
            .eval(&format!(
                "return new Promise(done => {{ const i = new Image(); \
                 i.onload = () => done('alive'); i.onerror = () => done('revoked'); \
                 i.src = {url:?}; }});"
            ))
            .await;
        state.as_str().unwrap_or_default().to_owned()
    }

    async fn shown(&self) -> (String, u64, u64) {
        let v = self
            .eval("const i = document.querySelector('img#view'); return [i.src, i.naturalWidth, i.naturalHeight];")
            .await;
        (
            v[0].as_str().unwrap_or_default().to_owned(),
            v[1].as_u64().unwrap_or_default(),
            v[2].as_u64().unwrap_or_default(),
        )
    }

    async fn wait_connected(&self, state: &str) {
        let script =
            format!("return document.querySelector('#connection').dataset.state === {state:?};");
        self.wait_until(&format!("connection {state}"), &script)
            .await;
    }

    /// Opens the editor and unlocks it with the admin token; returns once its tools show.
    async fn unlock_editor(&self) {
        self.eval("document.querySelector('#editor').open = true; return true;")
            .await;
        self.type_into("#token", TOKEN).await;
        self.click("#unlock button").await;
        self.wait_until(
            "the tools",
            "return !document.querySelector('#tools').hidden;",
        )
        .await;
    }

    /// Bytes of WebAssembly memory the page holds, from the bundle's `wasm_memory_bytes` (the
    /// page's own module instance: importing its URL again gives the module already loaded).
    async fn wasm_memory(&self) -> u64 {
        let bytes = self
            .eval("return import('/pkg/picture_web.js').then(m => m.wasm_memory_bytes());")
            .await;
        bytes
            .as_f64()
            .unwrap_or_else(|| panic!("wasm_memory_bytes gave {bytes}")) as u64
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

const DESCRIBE_PAGE: &str = "const q = s => document.querySelector(s); \
    return { connection: q('#connection')?.dataset.state, status: q('#status')?.dataset.state, \
    statusText: q('#status')?.textContent, name: q('img#view')?.dataset.name, \
    src: q('img#view')?.src, options: q('select#picture')?.options.length, \
    editor: q('#editor-status')?.textContent, editName: q('#edit-name')?.value };";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The picture server and its page, on ports chosen by the caller so that they can be
/// restarted at the same address.
async fn start_stack(tcp: SocketAddr, http: SocketAddr) -> (TestServer, WebServer) {
    let server = TestServer::start_at(tcp, &assets_dir(), Limits::default()).await;
    let web = WebServer::start_at(http, web_config(&www_dir(), server.local())).await;
    (server, web)
}

async fn menu_labels(browser: &Browser) -> Vec<String> {
    let labels = browser
        .eval("return [...document.querySelectorAll('select#picture option')].map(o => o.textContent.trim());")
        .await;
    labels
        .as_array()
        .unwrap_or_else(|| panic!("no options"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits for picture `p` on show: the picture itself, or the variant of it that fits in the
/// box the page asked for (`data-max-width` and `data-max-height`, 0 at full size).
async fn expect_picture(browser: &Browser, p: &PictureInfo) {
    browser.wait_for_picture(&p.name, "ok").await;
    let (src, width, height) = browser.shown().await;
    assert!(src.starts_with("blob:"), "{src}");
    let asked = browser
        .eval("const d = document.querySelector('img#view').dataset; return [+d.maxWidth, +d.maxHeight];")
        .await;
    let side = |n: usize| asked[n].as_u64().and_then(|s| u32::try_from(s).ok());
    let (Some(box_width), Some(box_height)) = (side(0), side(1)) else {
        panic!("no box recorded: {asked}");
    };
    assert_eq!(
        (width, height),
        fit((p.width, p.height), (box_width, box_height)),
        "{} in {box_width} x {box_height}",
        p.name
    );
}

/// PROTOCOL.md's box fit: the side the box bounds gets its size, the other is rounded to the
/// nearest pixel; a zero side is no bound; never larger than the picture.
fn fit((width, height): (u32, u32), (box_width, box_height): (u32, u32)) -> (u64, u64) {
    let (w, h) = (u64::from(width), u64::from(height));
    let bw = if box_width == 0 {
        w
    } else {
        u64::from(box_width).min(w)
    };
    let bh = if box_height == 0 {
        h
    } else {
        u64::from(box_height).min(h)
    };
    if bw * h <= bh * w {
        (bw, ((h * bw + w / 2) / w).clamp(1, bh))
    } else {
        (((w * bh + h / 2) / h).clamp(1, bw), bh)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_lists_and_shows_every_picture() {
    let (server, web) = start_stack(free_addr(), free_addr()).await;
    let pictures = catalog(server.addr).await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/", web.addr)).await;
    browser.wait_connected("connected").await;
    browser
        .wait_until(
            "the menu",
            &format!(
                "return document.querySelectorAll('select#picture option').length === {};",
                pictures.len()
            ),
        )
        .await;
    let expected: Vec<String> = pictures
        .iter()
        .map(|p| format!("{}. {}", p.number, p.title))
        .collect();
    assert_eq!(menu_labels(&browser).await, expected);
    let label = browser
        .eval("return document.querySelector('label[for=picture]') !== null;")
        .await;
    assert_eq!(label, Value::Bool(true), "the dropdown is labelled");

    // Without a deep link the first picture is shown at once.
    expect_picture(&browser, &pictures[0]).await;
    let mut previous_src = browser.shown().await.0;
    for p in pictures.iter().rev() {
        browser.choose(p.number).await;
        expect_picture(&browser, p).await;
        let src = browser.shown().await.0;
        assert_ne!(src, previous_src, "a new object URL for {}", p.name);
        // The previous picture's object URL is revoked, so its memory is given back; the
        // one shown is not.
        assert_eq!(browser.object_url_state(&previous_src).await, "revoked");
        assert_eq!(browser.object_url_state(&src).await, "alive");
        previous_src = src;
        let details = browser
            .eval("return document.querySelector('#details').textContent;")
            .await;
        let details = details.as_str().unwrap_or_default();
        assert!(
            details.contains(&format!("{}", p.width)) && details.contains(&p.title),
            "{details}"
        );
    }
    if let Ok(png) = browser.client.screenshot().await {
        let _ = std::fs::write(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page.png"),
            png,
        );
    }
    browser.close().await;
}

/// The box a thumbnail is asked for in, in CSS pixels (web-client/src/thumbnails.rs).
const THUMBNAIL_BOX: (u32, u32) = (112, 84);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_load_as_webp_at_their_size_and_pick_a_picture() {
    let (server, web) = start_stack(free_addr(), free_addr()).await;
    let pictures = catalog(server.addr).await;
    // A screen of 2 device pixels per CSS pixel: thumbnails are asked for twice as large.
    let browser = Browser::start_with(&["--force-device-scale-factor=2".to_owned()]).await;
    browser.goto(&format!("http://{}/", web.addr)).await;
    browser
        .wait_until(
            "every thumbnail",
            &format!(
                "const images = [...document.querySelectorAll('#strip img')]; \
                 return images.length === {} \
                     && images.every(i => i.complete && i.naturalWidth > 0);",
                pictures.len()
            ),
        )
        .await;
    let shown = browser
        .eval(
            "return [...document.querySelectorAll('#strip button')].map(b => { \
                 const i = b.querySelector('img'); \
                 return [+b.dataset.number, i.dataset.mime, i.naturalWidth, i.naturalHeight, \
                         i.src.startsWith('blob:')]; });",
        )
        .await;
    let device_box = (THUMBNAIL_BOX.0 * 2, THUMBNAIL_BOX.1 * 2);
    for (p, thumbnail) in pictures.iter().zip(shown.as_array().into_iter().flatten()) {
        let (width, height) = fit((p.width, p.height), device_box);
        assert_eq!(
            thumbnail,
            &json!([p.number, "image/webp", width, height, true]),
            "{}",
            p.name
        );
    }

    // Clicking a thumbnail shows its picture, marked in the strip and chosen in the menu.
    let third = &pictures[2];
    browser
        .click(&format!("#strip button[data-number='{}']", third.number))
        .await;
    expect_picture(&browser, third).await;
    let marked = browser
        .eval(
            "return [document.querySelector('#strip [aria-current=true]')?.dataset.number, \
                       document.querySelector('select#picture').value];",
        )
        .await;
    assert_eq!(
        marked,
        json!([third.number.to_string(), third.number.to_string()])
    );

    // A phone-width window: the strip scrolls sideways, the page does not, and the picture
    // is asked for at the width it has there.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mountain = pictures
        .iter()
        .find(|p| p.name == "mountain")
        .unwrap_or_else(|| panic!("no mountain in {pictures:?}"));
    browser
        .click(&format!("#strip button[data-number='{}']", mountain.number))
        .await;
    expect_picture(&browser, mountain).await;
    let layout = browser
        .eval(
            "const strip = document.querySelector('#strip'); \
             return [strip.scrollWidth > strip.clientWidth, \
                     document.documentElement.scrollWidth <= window.innerWidth, \
                     +document.querySelector('img#view').dataset.maxWidth <= 2 * window.innerWidth];",
        )
        .await;
    assert_eq!(layout, json!([true, true, true]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_links_select_a_picture_or_show_not_found() {
    let (server, web) = start_stack(free_addr(), free_addr()).await;
    let pictures = catalog(server.addr).await;
    let browser = Browser::start().await;
    let chosen = &pictures[pictures.len() / 2];
    browser
        .goto(&format!(
            "http://{}/#{}",
            web.addr,
            chosen.name.to_uppercase()
        ))
        .await;
    expect_picture(&browser, chosen).await;
    let selected = browser
        .eval("return document.querySelector('select#picture').value;")
        .await;
    assert_eq!(selected, Value::String(chosen.number.to_string()));

    browser.goto(&format!("http://{}/#unicorn", web.addr)).await;
    browser
        .client
        .refresh()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser.wait_for_picture("unicorn", "not-found").await;
    let not_found =
        image::load_from_memory(&asset_bytes("not-found")).unwrap_or_else(|e| panic!("{e}"));
    let (src, width, height) = browser.shown().await;
    assert!(src.starts_with("blob:"));
    assert_eq!(
        (width, height),
        (u64::from(not_found.width()), u64::from(not_found.height()))
    );
    let status = browser
        .eval("return document.querySelector('#status').textContent;")
        .await;
    let status = status.as_str().unwrap_or_default().to_lowercase();
    assert!(
        status.contains("no picture") && status.contains("unicorn"),
        "{status}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reconnects_after_a_server_restart() {
    let (tcp, http) = (free_addr(), free_addr());
    let (server, web) = start_stack(tcp, http).await;
    let pictures = catalog(server.addr).await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{http}/")).await;
    expect_picture(&browser, &pictures[0]).await;

    // The whole server goes away: the page says so, and a request fails visibly.
    web.stop().await;
    within(server.begin_shutdown())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser.wait_connected("disconnected").await;
    browser.choose(pictures[1].number).await;
    browser
        .wait_until(
            "a visible error",
            "return document.querySelector('#status').dataset.state === 'error';",
        )
        .await;

    // It comes back at the same address: the page reconnects, refreshes its menu and works.
    let (_server, _web) = start_stack(tcp, http).await;
    browser.wait_connected("connected").await;
    browser.choose(pictures[2].number).await;
    expect_picture(&browser, &pictures[2]).await;
    browser.close().await;
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_follows_changes_made_elsewhere_without_a_reload() {
    let (server, _db) = crate::writes::writable_server().await;
    menu_follows_changes(&server, server.addr).await;
}

/// The page on one server, and the changes made through another on the same PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_follows_changes_made_through_another_server_on_one_database() {
    let pg = crate::pg::PgServer::start();
    let a = crate::shared::on_postgres(&pg).await;
    let b = crate::shared::on_postgres(&pg).await;
    menu_follows_changes(&b, a.addr).await;
}

/// The same, with the pictures' bytes in an object store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_follows_changes_made_through_another_server_with_bytes_in_an_object_store() {
    let (pg, s3) = (
        crate::pg::PgServer::start(),
        crate::s3::S3Server::start().await,
    );
    let options = crate::blobs::options(&s3.bucket("page").await);
    let url: picture_server::store::StoreUrl = pg.url().parse().unwrap_or_else(|e| panic!("{e}"));
    let a = TestServer::start_store(&url, Limits::default(), &options).await;
    let b = TestServer::start_store(&url, Limits::default(), &options).await;
    menu_follows_changes(&b, a.addr).await;
}

/// The page of `server` while pictures are changed through the server at `writes`.
async fn menu_follows_changes(server: &TestServer, writes: SocketAddr) {
    let web = server.start_web().await;
    let shipped = manifest_names().len();
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/#dog", web.addr)).await;
    browser.wait_for_picture("dog", "ok").await;

    // An upload through the command-line client appears in the menu.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("lake.jpg");
    std::fs::copy(asset_path("forest-small"), &file).unwrap_or_else(|e| panic!("{e}"));
    let put = tokio::process::Command::new(client_program())
        .args([
            "--server",
            &writes.to_string(),
            "put",
            "lake.jpg",
            "--title",
            "A lake",
        ])
        .current_dir(dir.path())
        .env("PICTURE_TOKEN", TOKEN)
        .output();
    let put = within(put).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    browser
        .wait_until(
            "the uploaded picture in the menu",
            &format!(
                "const o = [...document.querySelectorAll('select#picture option')]; \
                 return o.length === {} && o[{shipped}].textContent.trim() === '{}. A lake';",
                shipped + 1,
                shipped + 1
            ),
        )
        .await;
    // The picture on show stays selected and shown.
    let selected = browser
        .eval("return document.querySelector('select#picture').value;")
        .await;
    assert_eq!(selected, json!("3"));

    // A rename and a retitle elsewhere relabel the menu.
    let mut writer = crate::store::authorized(writes).await;
    within(writer.retitle(
        picture_protocol::Selector::Name("house".into()),
        "Our house",
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    browser
        .wait_until(
            "the new title",
            "return document.querySelector('select#picture option[value=\"2\"]').textContent.trim() === '2. Our house';",
        )
        .await;

    // Deleting the picture on show says so.
    within(writer.delete(picture_protocol::Selector::Name("dog".into())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    browser
        .wait_until(
            "the deletion of the picture on show",
            &format!(
                "const s = document.querySelector('#status'); \
                 return s.dataset.state === 'deleted' && s.textContent.includes('Dog') \
                 && document.querySelectorAll('select#picture option').length === {shipped};"
            ),
        )
        .await;
    browser.close().await;
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_catalog_loads_page_by_page_and_can_be_searched() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    crate::store::generated_catalog(&db, 450, |n| {
        let word = if n % 100 == 7 { "Zebra" } else { "Picture" };
        (format!("pic-{n}"), format!("{word} {n}"))
    })
    .await;
    let server = TestServer::start_sqlite(&db, Limits::default()).await;
    let web = server.start_web().await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/", web.addr)).await;
    browser.wait_for_picture("pic-1", "ok").await;
    let options = "document.querySelectorAll('select#picture option').length";
    browser
        .wait_until(
            "the first page",
            &format!("return {options} === 200 && !document.querySelector('#more').hidden;"),
        )
        .await;
    browser
        .eval("document.querySelector('#more').click(); return true;")
        .await;
    browser
        .wait_until("the second page", &format!("return {options} === 400;"))
        .await;
    browser
        .eval("document.querySelector('#more').click(); return true;")
        .await;
    browser
        .wait_until(
            "the last page",
            &format!("return {options} === 450 && document.querySelector('#more').hidden;"),
        )
        .await;

    // Typing a search lists only the matches, from the whole catalog.
    browser.type_into("input#search", "zEBRA").await;
    browser
        .wait_until(
            "the search results",
            &format!(
                "const o = [...document.querySelectorAll('select#picture option')]; \
                 return {options} === 5 && o[4].textContent.trim() === '407. Zebra 407';"
            ),
        )
        .await;
    browser.choose(307).await;
    browser.wait_for_picture("pic-307", "ok").await;
    browser.close().await;
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_uploads_renames_retitles_and_deletes_with_the_token() {
    let (server, _db) = crate::writes::writable_server().await;
    let web = server.start_web().await;
    let shipped = manifest_names().len();
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/#car", web.addr)).await;
    browser.wait_for_picture("car", "ok").await;
    browser
        .eval("document.querySelector('#editor').open = true; return true;")
        .await;
    let editor_state = |state: &str, text: &str| {
        format!(
            "const s = document.querySelector('#editor-status'); \
             return s.dataset.state === '{state}' && s.textContent.includes({text:?});"
        )
    };

    // A wrong token: said in the page, the tools stay hidden.
    browser.type_into("#token", "not-the-token").await;
    browser.click("#unlock button").await;
    browser
        .wait_until("the refusal", &editor_state("error", "wrong admin token"))
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelector('#tools').hidden;")
            .await,
        json!(true)
    );
    browser.wait_connected("connected").await;

    browser.unlock_editor().await;

    // Upload with the file picker.
    let file = std::fs::canonicalize(asset_path("forest-small")).unwrap_or_else(|e| panic!("{e}"));
    browser
        .type_into("#upload-file", &file.display().to_string())
        .await;
    browser.type_into("#upload-name", "lake").await;
    browser.type_into("#upload-title", "A lake").await;
    browser.click("#upload button").await;
    browser
        .wait_until(
            "the upload",
            &editor_state("idle", &format!("Stored A lake as number {}", shipped + 1)),
        )
        .await;
    browser.wait_for_picture("lake", "ok").await;
    assert!(call(server.addr, by_name("lake")).await.body == asset_bytes("forest-small"));
    browser
        .wait_until(
            "the upload in the menu",
            &format!(
                "return document.querySelectorAll('select#picture option').length === {};",
                shipped + 1
            ),
        )
        .await;

    // Upload by dropping a file on the picture.
    browser
        .eval(
            "document.querySelector('#upload-name').value = 'dropped'; \
             const c = document.createElement('canvas'); c.width = 4; c.height = 3; \
             c.getContext('2d').fillRect(0, 0, 2, 2); \
             c.toBlob(blob => { const dt = new DataTransfer(); \
               dt.items.add(new File([blob], 'square.png', { type: 'image/png' })); \
               document.querySelector('#frame').dispatchEvent(new DragEvent('drop', \
                 { dataTransfer: dt, bubbles: true, cancelable: true })); }, 'image/png'); \
             return true;",
        )
        .await;
    browser
        .wait_until(
            "the dropped upload",
            &editor_state("idle", &format!("as number {}", shipped + 2)),
        )
        .await;
    browser.wait_for_picture("dropped", "ok").await;

    // Rename and retitle the picture on show.
    browser
        .wait_until(
            "the edit form",
            "return document.querySelector('#edit-name').value === 'dropped';",
        )
        .await;
    browser
        .eval(
            "document.querySelector('#edit-name').value = 'square'; \
             document.querySelector('#edit-title').value = 'A black square'; return true;",
        )
        .await;
    browser.click("#edit button[type=submit]").await;
    browser
        .wait_until(
            "the new name and title in the menu",
            &format!(
                "return [...document.querySelectorAll('select#picture option')] \
                 .some(o => o.textContent.trim() === '{}. A black square');",
                shipped + 2
            ),
        )
        .await;
    assert!(server.store().catalog().index_of_name("square").is_some());

    // Delete it, after confirming.
    browser.click("#delete").await;
    browser
        .client
        .accept_alert()
        .await
        .unwrap_or_else(|e| panic!("confirming: {e}"));
    browser
        .wait_until(
            "the deletion",
            "return document.querySelector('#status').dataset.state === 'deleted';",
        )
        .await;
    assert!(server.store().catalog().index_of_name("square").is_none());

    // The token is kept for the tab: after a reload the editor is unlocked again.
    browser.goto(&format!("http://{}/#car", web.addr)).await;
    browser
        .wait_until(
            "the tools after a reload",
            "return !document.querySelector('#tools').hidden;",
        )
        .await;
    browser.close().await;
    web.stop().await;
}

#[tokio::test]
async fn the_binary_serves_its_built_in_page_from_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .current_dir(dir.path());
    let mut server = ServerProcess::start(command).await;
    // Nothing from the build tree: the database in the working folder, no pictures.
    assert!(
        server
            .banner
            .starts_with("picture-server: 0 pictures in sqlite:data/pictures.db"),
        "{}",
        server.banner
    );
    assert!(dir.path().join("data/pictures.db").is_file());
    let page = server.next_line().await;
    let http = addr_in(&page, "http://");
    let browser = Browser::start().await;
    browser.goto(&format!("http://{http}/")).await;
    browser
        .wait_until(
            "the page saying how to add pictures",
            "return document.querySelector('#status').textContent.startsWith('No pictures yet');",
        )
        .await;
}

#[tokio::test]
async fn the_page_over_https_reaches_the_pictures_over_wss() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = crate::tls::TestCa::new("Test CA");
    let (cert, key, spki) = ca.write_server_with_spki(dir.path(), "server");
    let (_server, page) = crate::tls::start_tls_server(&cert, &key).await;
    let https = addr_in(&page, "https://");
    // Trusts exactly this server's key, as a browser trusts a certificate of a known CA.
    let browser =
        Browser::start_with(&[format!("--ignore-certificate-errors-spki-list={spki}")]).await;
    browser.goto(&format!("https://{https}/#dog")).await;
    browser.wait_for_picture("dog", "ok").await;
    let protocol = browser.eval("return location.protocol;").await;
    assert_eq!(protocol, Value::String("https:".to_owned()));
}

/// A PNG of noise, which does not compress: a little over 3 bytes a pixel. 2600 × 2600 is
/// about 20 MB.
fn large_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let noise = image::RgbImage::from_fn(width, height, |_, _| {
        // xorshift64: fast, and random enough to defeat compression.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    noise
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    png.into_inner()
}

/// How much the page's wasm memory may grow while it handles a picture of `size` bytes: a
/// little for the head and the bookkeeping, far less than the picture itself. (Copied
/// through wasm memory, a picture would leave its size behind twice or more.)
fn assert_little_growth(before: u64, after: u64, size: usize) {
    let growth = after.saturating_sub(before);
    eprintln!(
        "wasm memory: {before} bytes before, {after} after a picture of {size} bytes \
         (grew by {growth})"
    );
    assert!(
        growth < size as u64 / 8,
        "the page's wasm memory grew by {growth} bytes for a picture of {size} bytes"
    );
}

/// The page shows a 20 MB picture from a view of the buffer it arrived in, so its wasm memory
/// grows by far less than the picture. (It grew by 40.6 MB, twice the picture, when each
/// message was copied into wasm memory whole and its body once more.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_picture_is_shown_without_passing_through_wasm_memory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(asset_path("thumbnail"), dir.path().join("small.jpg"))
        .unwrap_or_else(|e| panic!("{e}"));
    let png = large_png(2600, 2600);
    std::fs::write(dir.path().join("large.png"), &png).unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(dir.path(), Limits::default()).await;
    let web = server.start_web().await;
    let pictures = catalog(server.addr).await;
    let large = pictures
        .iter()
        .find(|p| p.name == "large")
        .unwrap_or_else(|| panic!("no large picture in {pictures:?}"));
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/#small", web.addr)).await;
    browser.wait_for_picture("small", "ok").await;
    let before = browser.wasm_memory().await;

    browser.choose(large.number).await;
    expect_picture(&browser, large).await;
    // What the page shows first is fitted to the window: the full picture is a click away.
    assert!(browser.shown().await.1 < 2600);
    browser.click("#full-size").await;
    browser
        .wait_until(
            "the picture at full size",
            "const i = document.querySelector('img#view'); \
             return i.dataset.maxWidth === '0' && i.complete && i.naturalWidth === 2600;",
        )
        .await;
    expect_picture(&browser, large).await;
    assert_little_growth(before, browser.wasm_memory().await, png.len());
    browser.close().await;
    web.stop().await;
}

/// The editor sends a 20 MB picture as a Blob of the PUT frame and the file, then shows it from
/// the buffer it arrives in: the page's wasm memory grows by far less than the picture. (It
/// grew by 40.6 MB when the file was copied into wasm memory and then into one message.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_does_not_pass_through_wasm_memory() {
    let (server, _db) = crate::writes::writable_server().await;
    let web = server.start_web().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("large.png");
    let png = large_png(2600, 2600);
    std::fs::write(&file, &png).unwrap_or_else(|e| panic!("{e}"));
    let browser = Browser::start().await;
    browser
        .goto(&format!("http://{}/#thumbnail", web.addr))
        .await;
    browser.wait_for_picture("thumbnail", "ok").await;
    browser.unlock_editor().await;
    let before = browser.wasm_memory().await;

    // Sent, stored, and then fetched and shown.
    browser
        .type_into("#upload-file", &file.display().to_string())
        .await;
    browser.click("#upload button").await;
    browser.wait_for_picture("large", "ok").await;
    assert!(call(server.addr, by_name("large")).await.body == png);
    assert_little_growth(before, browser.wasm_memory().await, png.len());
    browser.close().await;
    web.stop().await;
}

/// The browser sends an upload's file itself, reading it when the message goes out: a file
/// changed since it was picked cannot be read, the browser fails the connection, and the
/// editor says the upload was cut off (and still says so once the page has reconnected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_it_was_picked_is_not_uploaded() {
    let (server, _db) = crate::writes::writable_server().await;
    let web = server.start_web().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("lake.jpg");
    std::fs::copy(asset_path("forest-small"), &file).unwrap_or_else(|e| panic!("{e}"));
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/#car", web.addr)).await;
    browser.wait_for_picture("car", "ok").await;
    browser.unlock_editor().await;
    browser
        .type_into("#upload-file", &file.display().to_string())
        .await;
    std::fs::write(&file, b"not the picture picked").unwrap_or_else(|e| panic!("{e}"));
    browser.click("#upload button").await;
    browser
        .wait_until(
            "the cut-off upload",
            "const s = document.querySelector('#editor-status'); \
             return s.dataset.state === 'error' && s.textContent.includes('picked again');",
        )
        .await;
    browser.wait_connected("connected").await;
    browser.wait_for_picture("car", "ok").await;
    let editor = browser
        .eval("return document.querySelector('#editor-status').textContent;")
        .await;
    assert!(
        editor.as_str().is_some_and(|e| e.contains("picked again")),
        "{editor}"
    );
    assert!(server.store().catalog().index_of_name("lake").is_none());
    browser.close().await;
    web.stop().await;
}
