//! `sluice new NAME`: scaffold a connector crate outside this repository.
//!
//! The crate depends on the guest SDK (by path, or by git URL), builds to a component with a
//! plain `cargo build --release` (its `.cargo/config.toml` selects `wasm32-wasip2`), and has
//! native tests that drive it with `sluice_sdk::testing::Harness`. It builds and passes its
//! tests as generated. The files are templates in `template/`, with `{{name}}`,
//! `{{crate_name}}`, `{{type_name}}` and `{{sdk_dependency}}` filled in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// The SDK directory next to the host crate this binary was built from, if it still exists.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// The SDK's package name.
const SDK_PACKAGE: &str = "sluice-sdk";

/// Longest accepted connector name (a crate name; crates.io allows 64 characters).
const MAX_NAME_LEN: usize = 64;

/// Names that are not usable as a crate name: Rust keywords, the standard crates, and the SDK.
const RESERVED_NAMES: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "std",
    "proc_macro",
    "test",
    "sluice_sdk",
];

/// The generated files: path in the crate, template.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    ("src/tests.rs", include_str!("template/tests.rs.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    ("example.toml", include_str!("template/example.toml.tmpl")),
    (
        ".cargo/config.toml",
        include_str!("template/cargo-config.toml.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("template/rust-toolchain.toml.tmpl"),
    ),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

/// Where the generated crate gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A local `guest-sdk` directory (made absolute).
    Path(PathBuf),
    /// A git repository holding the SDK (cargo finds the `sluice-sdk` package in it).
    Git(String),
}

impl SdkSource {
    /// The SDK from `--sdk PATH`, `--sdk-git URL`, or else the `guest-sdk/` this binary was
    /// built from.
    pub fn choose(path: Option<&Path>, git: Option<&str>) -> Result<Self> {
        match (path, git) {
            (Some(_), Some(_)) => bail!("pass either `--sdk PATH` or `--sdk-git URL`, not both"),
            (Some(path), None) => Self::local(path),
            (None, Some(url)) => {
                ensure!(
                    !url.trim().is_empty(),
                    "`--sdk-git` needs the URL of a git repository holding the Sluice SDK"
                );
                Ok(Self::Git(url.trim().to_owned()))
            }
            (None, None) => {
                let built_from = Path::new(BUILT_FROM_SDK);
                if built_from.join("Cargo.toml").is_file() {
                    Self::local(built_from)
                } else {
                    bail!(
                        "this `sluice` was built from a checkout that is gone, so there is no SDK \
                         to depend on; pass `--sdk PATH` (the `guest-sdk` directory of a Sluice \
                         checkout) or `--sdk-git URL`"
                    )
                }
            }
        }
    }

    /// A local SDK directory, checked to hold the `sluice-sdk` package.
    fn local(path: &Path) -> Result<Self> {
        let manifest = path.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).with_context(|| {
            format!(
                "`{}` is not the SDK: it has no readable Cargo.toml; pass `--sdk` the `guest-sdk` \
                 directory of a Sluice checkout",
                path.display()
            )
        })?;
        let name = toml::from_str::<toml::Table>(&text).ok().and_then(|table| {
            table
                .get("package")?
                .get("name")?
                .as_str()
                .map(str::to_owned)
        });
        ensure!(
            name.as_deref() == Some(SDK_PACKAGE),
            "`{}` is not the SDK: its package is {}, not `{SDK_PACKAGE}`; pass `--sdk` the \
             `guest-sdk` directory of a Sluice checkout",
            manifest.display(),
            name.map_or_else(|| "unnamed".to_owned(), |name| format!("`{name}`")),
        );
        let absolute = path
            .canonicalize()
            .with_context(|| format!("cannot resolve `{}`", path.display()))?;
        Ok(Self::Path(absolute))
    }

    /// The dependency's value in Cargo.toml, e.g. `{ path = "/src/sluice/guest-sdk" }`.
    fn dependency(&self) -> String {
        // A TOML string literal, escaped as TOML wants (backslashes of Windows paths, quotes).
        let quote = |text: &str| toml::Value::String(text.to_owned()).to_string();
        match self {
            Self::Path(path) => format!("{{ path = {} }}", quote(&path.to_string_lossy())),
            Self::Git(url) => format!("{{ git = {}, package = \"{SDK_PACKAGE}\" }}", quote(url)),
        }
    }
}

/// A connector crate to create.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The package name, e.g. `acme-widgets`.
    pub name: String,
    /// The directory to create (`<parent>/<name>`); it must not exist.
    pub dir: PathBuf,
    /// Where the SDK comes from.
    pub sdk: SdkSource,
}

impl Scaffold {
    /// `name` in `parent` (the working directory by default), after checking the name.
    pub fn new(name: &str, parent: Option<&Path>, sdk: SdkSource) -> Result<Self> {
        validate_name(name)?;
        let dir = parent.unwrap_or(Path::new(".")).join(name);
        Ok(Self {
            name: name.to_owned(),
            dir,
            sdk,
        })
    }

    /// The crate's Rust name: `acme-widgets` → `acme_widgets` (also the component's file stem).
    pub fn crate_name(&self) -> String {
        self.name.replace('-', "_")
    }

    /// The connector type's name: `acme-widgets` → `AcmeWidgetsConnector`.
    pub fn type_name(&self) -> String {
        let mut camel: String = self
            .name
            .split(['-', '_'])
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        // Never just `Connector`: that is the SDK's trait.
        if camel == "Connector" || !camel.ends_with("Connector") {
            camel.push_str("Connector");
        }
        camel
    }

    /// The component `cargo build --release` writes, relative to the crate.
    pub fn component(&self) -> PathBuf {
        Path::new("target/wasm32-wasip2/release").join(format!("{}.wasm", self.crate_name()))
    }

    /// Each file's path in the crate and its contents.
    pub fn render(&self) -> Vec<(&'static str, String)> {
        let values = [
            ("name", self.name.clone()),
            ("crate_name", self.crate_name()),
            ("type_name", self.type_name()),
            ("sdk_dependency", self.sdk.dependency()),
        ];
        FILES
            .iter()
            .map(|(path, template)| (*path, substitute(template, &values)))
            .collect()
    }

    /// Creates the directory and writes the crate. Nothing is overwritten: an existing
    /// directory is an error, and a failure part-way removes what was written.
    pub fn write(&self) -> Result<()> {
        if self.dir.exists() {
            bail!(
                "`{}` already exists; choose another name or `--dir`, or remove it first",
                self.dir.display()
            );
        }
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        // `create_dir`, not `create_dir_all`: it fails if the directory appeared meanwhile.
        std::fs::create_dir(&self.dir).with_context(|| {
            format!(
                "cannot create `{}` (it must not exist yet)",
                self.dir.display()
            )
        })?;
        let written = self.render().into_iter().try_for_each(|(path, contents)| {
            let path = self.dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write `{}`", path.display()))
        });
        if let Err(error) = written {
            let _ = std::fs::remove_dir_all(&self.dir);
            return Err(error);
        }
        Ok(())
    }

    /// What to do next, printed after [`Scaffold::write`].
    pub fn next_steps(&self) -> String {
        let wasm = self.component();
        let wasm = wasm.display();
        let sdk = match &self.sdk {
            SdkSource::Path(path) => format!("the SDK at {}", path.display()),
            SdkSource::Git(url) => format!("the SDK from {url}"),
        };
        format!(
            "Created connector `{name}` in {dir} (with {sdk}).\n\
             \n\
             Next steps:\n\
             \x20 cd {dir}\n\
             \x20 cargo test --target host-tuple   # native tests with sluice_sdk::testing::Harness\n\
             \x20 cargo build --release            # the component: {wasm}\n\
             \x20 sluice check --connector {wasm} --config example.toml\n\
             \x20 sluice run --connector {wasm} --config example.toml\n\
             \n\
             Edit example.toml for your API first, or try the connector as generated against\n\
             `sluice demo --serve` as example.toml says; src/lib.rs says what to change in the code.\n",
            name = self.name,
            dir = self.dir.display(),
        )
    }
}

/// `sluice new`: create the crate and print the next steps.
pub fn run(
    name: &str,
    parent: Option<&Path>,
    sdk: Option<&Path>,
    sdk_git: Option<&str>,
) -> Result<()> {
    let sdk = SdkSource::choose(sdk, sdk_git)?;
    let scaffold = Scaffold::new(name, parent, sdk)?;
    scaffold.write()?;
    print!("{}", scaffold.next_steps());
    Ok(())
}

/// A connector name is a package name that is also a usable Rust crate name.
pub fn validate_name(name: &str) -> Result<()> {
    let hint =
        "use lowercase letters, digits, `-` and `_`, starting with a letter, e.g. `acme-widgets`";
    ensure!(!name.is_empty(), "the connector name is empty; {hint}");
    ensure!(
        name.len() <= MAX_NAME_LEN,
        "the connector name is {} characters long, more than {MAX_NAME_LEN}",
        name.len()
    );
    ensure!(
        name.starts_with(|c: char| c.is_ascii_lowercase()),
        "`{name}` is not a valid connector name: it must start with a lowercase letter; {hint}"
    );
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'))
    {
        bail!("`{name}` is not a valid connector name: {bad:?} is not allowed; {hint}");
    }
    ensure!(
        !RESERVED_NAMES.contains(&name.replace('-', "_").as_str()),
        "`{name}` is not a valid connector name: it is reserved in Rust; choose another, e.g. \
         `{name}-connector`"
    );
    Ok(())
}

/// Replaces each `{{key}}` of `values` in `template`.
fn substitute(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaffold(name: &str) -> Scaffold {
        Scaffold::new(
            name,
            Some(Path::new("/tmp/x")),
            SdkSource::Path("/src/sluice/guest-sdk".into()),
        )
        .unwrap()
    }

    #[test]
    fn names_become_crate_and_type_names() {
        let s = scaffold("acme-widgets");
        assert_eq!(s.crate_name(), "acme_widgets");
        assert_eq!(s.type_name(), "AcmeWidgetsConnector");
        assert_eq!(s.dir, Path::new("/tmp/x/acme-widgets"));
        assert_eq!(
            s.component(),
            Path::new("target/wasm32-wasip2/release/acme_widgets.wasm")
        );
        assert_eq!(scaffold("v2_api").type_name(), "V2ApiConnector");
        assert_eq!(scaffold("shop-connector").type_name(), "ShopConnector");
        assert_eq!(scaffold("connector").type_name(), "ConnectorConnector");
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for bad in [
            "",
            "Widgets",
            "1password",
            "-x",
            "my widgets",
            "wid.gets",
            "ünï",
        ] {
            let error = validate_name(bad).unwrap_err().to_string();
            assert!(error.contains("lowercase"), "{bad:?}: {error}");
        }
        for reserved in ["fn", "std", "test", "sluice-sdk", "sluice_sdk"] {
            let error = validate_name(reserved).unwrap_err().to_string();
            assert!(error.contains("reserved"), "{reserved:?}: {error}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
        for good in ["widgets", "acme-widgets", "a_b-c9", "x"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let files = scaffold("acme-widgets").render();
        assert_eq!(files.len(), FILES.len());
        for (path, text) in &files {
            assert!(!text.contains("{{name}}"), "{path}");
            let leftover = text
                .match_indices("{{")
                .map(|(at, _)| &text[at..])
                .find(|rest| {
                    rest[2..].split_once("}}").is_some_and(|(key, _)| {
                        key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
                });
            assert_eq!(leftover, None, "{path} keeps a placeholder");
        }
        let manifest = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        let manifest: toml::Table = toml::from_str(manifest).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("acme-widgets"));
        assert_eq!(
            manifest["dependencies"]["sluice-sdk"]["path"].as_str(),
            Some("/src/sluice/guest-sdk")
        );
        let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        assert!(lib.contains("export_connector!(AcmeWidgetsConnector)"));
    }

    #[test]
    fn sdk_dependencies_are_valid_toml() {
        let git = SdkSource::Git("https://example.com/sluice.git".into()).dependency();
        let table: toml::Table = toml::from_str(&format!("d = {git}")).unwrap();
        assert_eq!(
            table["d"]["git"].as_str(),
            Some("https://example.com/sluice.git")
        );
        assert_eq!(table["d"]["package"].as_str(), Some("sluice-sdk"));
        let odd = SdkSource::Path(r#"C:\a "b"\guest-sdk"#.into()).dependency();
        let table: toml::Table = toml::from_str(&format!("d = {odd}")).unwrap();
        assert_eq!(table["d"]["path"].as_str(), Some(r#"C:\a "b"\guest-sdk"#));
    }

    #[test]
    fn the_sdk_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let error = SdkSource::choose(Some(dir.path()), None).unwrap_err();
        assert!(
            format!("{error:#}").contains("no readable Cargo.toml"),
            "{error:#}"
        );
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();
        let error = SdkSource::choose(Some(dir.path()), None).unwrap_err();
        assert!(error.to_string().contains("package is `other`"), "{error}");
        assert!(SdkSource::choose(Some(dir.path()), Some("u")).is_err());
        // The SDK of this checkout is the default, absolute.
        match SdkSource::choose(None, None).unwrap() {
            SdkSource::Path(path) => {
                assert!(
                    path.is_absolute() && path.ends_with("guest-sdk"),
                    "{path:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn existing_directories_are_not_touched() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("taken")).unwrap();
        std::fs::write(parent.path().join("taken/keep"), "mine").unwrap();
        let s = Scaffold::new(
            "taken",
            Some(parent.path()),
            SdkSource::Git("https://example.com/s.git".into()),
        )
        .unwrap();
        let error = s.write().unwrap_err().to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(
            std::fs::read_to_string(parent.path().join("taken/keep")).unwrap(),
            "mine"
        );

        let s = Scaffold::new(
            "fresh",
            Some(&parent.path().join("deeper")),
            SdkSource::Git("https://example.com/s.git".into()),
        )
        .unwrap();
        s.write().unwrap();
        for (path, _) in FILES {
            assert!(s.dir.join(path).is_file(), "{path}");
        }
    }
}
