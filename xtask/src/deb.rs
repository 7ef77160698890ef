//! `cargo xtask deb`: the Debian package, built with dpkg-deb from a
//! staging tree (no debhelper, no source package).
//!
//! The sources are in `contrib/`: the unit (`collecte.service`) and, in
//! `contrib/debian/`, the control template, the maintainer scripts, the
//! conffile, the copyright and the changelog. The package is native (its
//! version is the workspace's, without a Debian revision), so its
//! changelog is `changelog.gz`, as lintian expects of a native package.
use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{cargo, output, run};

/// The package's version: the workspace's (xtask shares it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where cargo puts its output.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Builds `target/debian/collecte_VERSION_ARCH.deb` and returns its path.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let src = root.join("contrib/debian");
    check_changelog(&src.join("changelog"))?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string();
    if arch.is_empty() {
        bail!("dpkg --print-architecture printed nothing: is dpkg installed?");
    }
    cargo(&[
        "build",
        "--release",
        "-p",
        "router-user",
        "--bin",
        "collecte",
    ])?;
    let target = target_dir(root);
    let out_dir = target.join("debian");
    let name = format!("collecte_{VERSION}_{arch}");
    let stage = out_dir.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }

    // The files.
    let sbin = stage.join("usr/sbin/collecte");
    install(&target.join("release/collecte"), &sbin, 0o755)?;
    run(Command::new("strip")
        .args(["--remove-section=.comment", "--remove-section=.note"])
        .arg(&sbin))?;
    install(
        &root.join("contrib/collecte.service"),
        &stage.join("lib/systemd/system/collecte.service"),
        0o644,
    )?;
    install(
        &src.join("collecte.toml"),
        &stage.join("etc/collecte/collecte.toml"),
        0o644,
    )?;
    let doc = stage.join("usr/share/doc/collecte");
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    for example in sorted_files(&root.join("examples"))? {
        let name = example.file_name().expect("a file name");
        install(&example, &doc.join("examples").join(name), 0o644)?;
    }
    fs::write(doc.join("copyright"), copyright(root, &src)?)?;
    set_mode(&doc.join("copyright"), 0o644)?;
    gzip(&src.join("changelog"), &doc.join("changelog.gz"))?;
    let man = stage.join("usr/share/man/man8");
    fs::create_dir_all(&man)?;
    let page = out_dir.join("collecte.8");
    run(Command::new("help2man")
        .args([
            "--no-info",
            "--section=8",
            "--name=XDP fast path of an associative ISP's collection router",
            &format!("--version-string={VERSION}"),
            "--output",
        ])
        .arg(&page)
        .arg(&sbin))?;
    gzip(&page, &man.join("collecte.8.gz"))?;

    // The control area.
    let control_dir = stage.join("DEBIAN");
    fs::create_dir_all(&control_dir)?;
    for script in ["postinst", "prerm", "postrm"] {
        install(&src.join(script), &control_dir.join(script), 0o755)?;
    }
    fs::write(
        control_dir.join("conffiles"),
        "/etc/collecte/collecte.toml\n",
    )?;
    fs::write(control_dir.join("md5sums"), md5sums(&stage)?)?;
    let template =
        fs::read_to_string(src.join("control.in")).context("reading contrib/debian/control.in")?;
    let control = template
        .replace("@VERSION@", VERSION)
        .replace("@ARCH@", &arch)
        .replace("@INSTALLED_SIZE@", &installed_size(&stage)?.to_string())
        .replace("@DEPENDS@", &depends(&sbin, &out_dir)?);
    if control
        .split('@')
        .skip(1)
        .step_by(2)
        .any(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    {
        bail!("contrib/debian/control.in: a placeholder is left unreplaced:\n{control}");
    }
    fs::write(control_dir.join("control"), control)?;
    for f in ["conffiles", "md5sums", "control"] {
        set_mode(&control_dir.join(f), 0o644)?;
    }
    dirs_0755(&stage)?;

    let deb = out_dir.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&stage)
        .arg(&deb))?;
    println!("{}", deb.display());
    Ok(deb)
}

/// The changelog's latest entry must be this version: `collecte (X) ...`.
fn check_changelog(path: &Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = text.lines().next().unwrap_or_default();
    let version = first
        .strip_prefix("collecte (")
        .and_then(|r| r.split_once(')'))
        .map(|(v, _)| v)
        .with_context(|| {
            format!(
                "{}: the first line should be `collecte (VERSION) unstable; urgency=medium`, not {first:?}",
                path.display()
            )
        })?;
    if version != VERSION {
        bail!(
            "{}: the latest entry is for version {version}, the workspace is at {VERSION}: add an entry for {VERSION}",
            path.display()
        );
    }
    Ok(())
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    fs::create_dir_all(to.parent().expect("a parent"))?;
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

fn sorted_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_file() {
            files.push(e.path());
        }
    }
    files.sort();
    Ok(files)
}

/// `gzip -9n`: no name or timestamp in the header, as lintian wants.
fn gzip(from: &Path, to: &Path) -> anyhow::Result<()> {
    let out = Command::new("gzip")
        .arg("-9nc")
        .arg(from)
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!(
            "gzip {}: {}",
            from.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(to, out.stdout)?;
    set_mode(to, 0o644)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        out.push(e.path());
        if e.file_type()?.is_dir() {
            walk(&e.path(), out)?;
        }
    }
    Ok(())
}

/// Every file and directory of the package (not the control area).
fn contents(stage: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    walk(stage, &mut all)?;
    let control = stage.join("DEBIAN");
    Ok(all
        .into_iter()
        .filter(|p| !p.starts_with(&control))
        .collect())
}

fn md5sums(stage: &Path) -> anyhow::Result<String> {
    let mut sums = String::new();
    for p in contents(stage)? {
        if !p.is_file() {
            continue;
        }
        let line = output(Command::new("md5sum").arg(&p));
        let sum = line
            .split_whitespace()
            .next()
            .with_context(|| format!("md5sum {} printed nothing", p.display()))?;
        let rel = p.strip_prefix(stage).expect("under the stage");
        sums += &format!("{sum}  {}\n", rel.display());
    }
    Ok(sums)
}

/// In KiB, as dpkg-gencontrol counts it: each file rounded up, one per
/// directory.
fn installed_size(stage: &Path) -> anyhow::Result<u64> {
    let mut kib = 0;
    for p in contents(stage)? {
        let m = fs::symlink_metadata(&p)?;
        kib += if m.is_file() {
            m.len().div_ceil(1024)
        } else {
            1
        };
    }
    Ok(kib)
}

fn dirs_0755(stage: &Path) -> anyhow::Result<()> {
    set_mode(stage, 0o755)?;
    let mut all = Vec::new();
    walk(stage, &mut all)?;
    for p in all {
        if p.is_dir() {
            set_mode(&p, 0o755)?;
        }
    }
    Ok(())
}

/// The binary's shared-library dependencies, from dpkg-shlibdeps (which
/// wants a debian/control beside it: a minimal one in a scratch tree).
fn depends(binary: &Path, out_dir: &Path) -> anyhow::Result<String> {
    let scratch = out_dir.join("shlibdeps");
    fs::create_dir_all(scratch.join("debian"))?;
    fs::write(
        scratch.join("debian/control"),
        "Source: collecte\n\nPackage: collecte\nArchitecture: any\n",
    )?;
    let out = Command::new("dpkg-shlibdeps")
        .arg("-O")
        .arg(format!("-e{}", binary.display()))
        .current_dir(&scratch)
        .output()
        .context("running dpkg-shlibdeps (Debian package dpkg-dev)")?;
    let _ = fs::remove_dir_all(&scratch);
    if !out.status.success() {
        bail!(
            "dpkg-shlibdeps -e{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let deps = text
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {text}"))?;
    Ok(deps.trim().to_string())
}

/// contrib/debian/copyright, with the crates compiled into the binary and
/// their licences (from `cargo tree`) in place of `@CRATES@`.
fn copyright(root: &Path, src: &Path) -> anyhow::Result<String> {
    let text =
        fs::read_to_string(src.join("copyright")).context("reading contrib/debian/copyright")?;
    if !text.contains("@CRATES@") {
        bail!("contrib/debian/copyright: no @CRATES@ placeholder for the crates' list");
    }
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "router-user",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p} {l}",
        ])
        .current_dir(root)
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut crates: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        // collecte's own crates (path dependencies) are the Files: * stanza.
        .filter(|l| !l.trim().is_empty() && !l.contains(" (/"))
        .map(|l| {
            let l = l.replace(" (*)", "");
            let mut w = l.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            let version = w.next().unwrap_or_default().to_string();
            let license: Vec<&str> = w.collect();
            let license = if license.is_empty() {
                "no licence given".to_string()
            } else {
                license.join(" ")
            };
            format!(" {name} {version}: {license}")
        })
        .collect();
    crates.sort();
    crates.dedup();
    if crates.is_empty() {
        bail!("cargo tree listed no crate");
    }
    Ok(text.replace("@CRATES@", &crates.join("\n")))
}
