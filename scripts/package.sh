#!/usr/bin/env bash
# Builds slapos-node_<version>_amd64.deb with dpkg-deb, offline and
# reproducibly: same checkout, same node binary, same bytes.
#   - the version is package.json's;
#   - every file gets the time SOURCE_DATE_EPOCH (default: the last commit's),
#     owner root:root and a normalised mode; dpkg-deb sorts the members;
#   - nothing of the build machine's paths is inside (checked at the end).
# What goes in /opt/slapos-node: the Node.js runtime (a stripped copy of the
# node running this script, with its LICENSE), bin/, dist/src (compiled and
# bundled), the native addon, lib/, systemd/ templates, docs/, the example
# configuration and the production npm dependencies (those `npm ls --omit=dev`
# lists, from node_modules, offline). Units rendered for those paths go in
# /lib/systemd/system, /usr/bin/slapos runs the CLI, /etc/opt/slapos/slapos.cfg is a conffile.
#
# Usage: scripts/package.sh [--out DIR] [--no-build]
#   --out DIR    write the .deb into DIR (default: the checkout)
#   --no-build   use dist/ and build/ as they are (npm run build must have run)
#   --compression xz|zstd|gzip   data.tar's (default xz: the smallest, ~1 CPU-minute;
#                zstd: a quarter bigger, 20 times faster, what the package test uses)
# Prints the path of the .deb on its last line.
set -euo pipefail
PROJECT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$PROJECT"
BUILD=1
COMPRESSION=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --compression) COMPRESSION="${2:?--compression needs xz, zstd or gzip}"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
cd "$PROJECT"
case "$COMPRESSION" in
  xz) ZARGS=(-Zxz -z6 --threads-max=1) ;; # one thread: the same blocks, so the same bytes, on any machine
  zstd) ZARGS=(-Zzstd -z3 --threads-max=1) ;;
  gzip) ZARGS=(-Zgzip -z9) ;;
  *) echo "package: --compression $COMPRESSION: xz, zstd or gzip" >&2; exit 1 ;;
esac
for tool in dpkg-deb strip; do
  command -v "$tool" >/dev/null || { echo "package: $tool is needed (apt install dpkg-dev binutils)" >&2; exit 1; }
done

NODE="$(command -v node)"
VERSION="$(node -p 'require("./package.json").version')"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$PROJECT" log -1 --format=%ct 2>/dev/null || true)"
  [ -n "$SOURCE_DATE_EPOCH" ] || { echo "package: set SOURCE_DATE_EPOCH (no git history here)" >&2; exit 1; }
fi
export SOURCE_DATE_EPOCH
# Debian's usual variables; the default address is reserved (.invalid): set them to publish.
MAINTAINER="${DEBFULLNAME:-slapos-node maintainers} <${DEBEMAIL:-maintainers@slapos-node.invalid}>"
case "$MAINTAINER" in *'|'*|*$'\n'*) echo "package: DEBFULLNAME/DEBEMAIL must not contain | or newlines" >&2; exit 1 ;; esac
NODE_MAJOR="$("$NODE" -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || { echo "package: node $("$NODE" --version) is too old to ship (>= 20.19)" >&2; exit 1; }
NODE_LICENSE=""
for candidate in "$(dirname "$(dirname "$(readlink -f "$NODE")")")/share/doc/nodejs/LICENSE" /usr/share/doc/nodejs/LICENSE; do
  if [ -f "$candidate" ]; then NODE_LICENSE="$candidate"; break; fi
done
[ -n "$NODE_LICENSE" ] || { echo "package: the LICENSE of $NODE was not found (shipping a runtime needs it)" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then npm run --silent build >&2; fi
for needed in dist/src/cli/main.js build/Release/slapos_native.node build/Release/slapos-launch build/Release/slapos-buildout-client; do
  [ -f "$needed" ] || { echo "package: $needed is missing (npm run build, npm run build:native)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slapos-package.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
APP="$ROOT/opt/slapos-node"
mkdir -p "$APP/node/bin" "$APP/build/Release" "$APP/dist" "$ROOT/DEBIAN"

# The runtime: debug information out (it holds the runtime's build paths), the
# dynamic symbols addons link against kept (--strip-unneeded keeps .dynsym).
strip --strip-unneeded -o "$APP/node/bin/node" "$NODE"
cp "$NODE_LICENSE" "$APP/node/LICENSE"

# The application.
cp -r bin lib systemd docs package.json package-lock.json slapos.cfg.example "$APP/"
# Bytecode a local run left (Python writes it next to lib/*.py) is not shipped.
find "$APP/lib" -name __pycache__ -prune -exec rm -rf {} +
cp -r dist/src "$APP/dist/src"
find "$APP/dist" -name '*.map' -delete
# main.js loads program.bundle.js when it is not older than program.js; in the
# package every file has the same time, so a bundle older than a later tsc run
# would be loaded stale: it goes (the CLI then runs unbundled, a bit slower).
if [ -f dist/src/cli/program.bundle.js ] && [ dist/src/cli/program.bundle.js -ot dist/src/cli/program.js ]; then
  echo "package: dist/src/cli/program.bundle.js is older than program.js (npm run build to bundle): shipped unbundled" >&2
  rm -f "$APP/dist/src/cli/program.bundle.js"
fi
# The same for the help records (src/cli/help-cache.ts): stale ones go, and commander answers --help.
if [ -f dist/src/cli/help.json ] && [ dist/src/cli/help.json -ot dist/src/cli/program.js ]; then
  rm -f "$APP/dist/src/cli/help.json"
fi
# And for the command bundles (src/cli/context.ts, importCommandModule) with their chunks.
if [ -f dist/src/instance/command.bundle.js ] && [ dist/src/instance/command.bundle.js -ot dist/src/instance/command.js ]; then
  rm -f "$APP"/dist/src/instance/command.bundle*.js
fi
strip --strip-unneeded -o "$APP/build/Release/slapos_native.node" build/Release/slapos_native.node
# The programs every partition process and instance buildout starts through.
for program in slapos-launch slapos-buildout-client; do
  strip --strip-unneeded -o "$APP/build/Release/$program" "build/Release/$program"
done

# Production dependencies: the packages `npm ls --omit=dev` lists (offline,
# from node_modules as installed by npm ci), then without what a running node
# never reads (native build trees, sources, other architectures' binaries).
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$PROJECT/||" | grep -E '^node_modules/(@[^/]+/)?[^/]+$' > "$WORK/production" || true
[ -s "$WORK/production" ] || { echo "package: npm ls --omit=dev listed no dependency (run npm ci)" >&2; exit 1; }
xargs -a "$WORK/production" -d '\n' cp -r --parents -t "$APP"
sqlite="$APP/node_modules/better-sqlite3"
if [ -d "$sqlite" ]; then
  find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$sqlite/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
  rm -rf "$sqlite/deps" "$sqlite/src"
  strip --strip-unneeded "$sqlite/build/Release/better_sqlite3.node"
fi
find "$APP/node_modules" -path '*/prebuilds/*' -mindepth 1 -maxdepth 4 -type d -name 'linux-*' ! -name linux-x64 -exec rm -rf {} +
find "$APP/node_modules" -path '*/prebuilds/*' -type d \( -name 'darwin-*' -o -name 'win32-*' -o -name 'android-*' -o -name 'freebsd-*' \) -exec rm -rf {} +
find "$APP/node_modules" \( -name '*.md' ! -iname 'license*' -o -name '*.map' -o -name '*.ts' ! -name '*.d.ts' -o -name '.package-lock.json' \) -type f -delete
find "$APP/node_modules" -name '*.d.ts' -type f -delete
find "$APP/node_modules" -name '.*' ! -name '.bin' -prune -exec rm -rf {} +
find "$APP/node_modules" -name '.bin' -type d -prune -exec rm -rf {} +
find "$APP/node_modules" -type d \( -name test -o -name tests -o -name __tests__ -o -name benchmarks -o -name bench \
  -o -name example -o -name examples -o -name integration -o -name docs \) -prune -exec rm -rf {} +
find "$APP/node_modules" -type f -name '*.html' -delete
find "$APP/node_modules" -name '*.node' -type f -exec strip --strip-unneeded {} +

# The command on the PATH.
mkdir -p "$ROOT/usr/bin"
cat > "$ROOT/usr/bin/slapos" <<'EOF'
#!/bin/sh
# slapos-node: the slapos command, on the Node.js runtime shipped with the package.
exec /opt/slapos-node/node/bin/node /opt/slapos-node/bin/slapos.js "$@"
EOF
chmod 755 "$ROOT/usr/bin/slapos"

# The configuration (a conffile) and the units, rendered for /opt/slapos-node.
install -D -m 0640 slapos.cfg.example "$ROOT/etc/opt/slapos/slapos.cfg"
mkdir -p "$ROOT/lib/systemd/system"
"$NODE" --input-type=module -e '
  const [dist, out] = process.argv.slice(1);
  const { renderUnits, unitVars } = await import(`${dist}/src/node/systemd.js`);
  const { writeFileSync } = await import("node:fs");
  const vars = unitVars({ node: "/opt/slapos-node/node/bin/node", project: "/opt/slapos-node", configFile: "/etc/opt/slapos/slapos.cfg", databaseUri: "/opt/slapos/proxy.db" });
  for (const [name, text] of renderUnits(vars, `${dist}/../systemd`)) {
    const body = text.replace(/^# Installed by .*\n/, "# Installed by the slapos-node package; enable with systemctl (docs/operations.md).\n");
    writeFileSync(`${out}/${name}`, body);
  }
' "$PROJECT/dist" "$ROOT/lib/systemd/system"

# Debian's documentation files and lintian's overrides (explained in docs/operations.md).
install -D -m 0644 packaging/debian/lintian-overrides "$ROOT/usr/share/lintian/overrides/slapos-node"
DOC="$ROOT/usr/share/doc/slapos-node"
mkdir -p "$DOC"
cp packaging/debian/copyright "$DOC/copyright"
{
  printf 'slapos-node (%s) unstable; urgency=medium\n\n' "$VERSION"
  printf '  * Release %s: see /opt/slapos-node/docs and the project'"'"'s CHANGELOG.md.\n\n' "$VERSION"
  printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$DOC/changelog.gz"
if [ -f CHANGELOG.md ]; then cp CHANGELOG.md "$APP/CHANGELOG.md"; fi

# Control area.
for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$ROOT/DEBIAN/$script"; done
install -m 0644 packaging/debian/conffiles "$ROOT/DEBIAN/conffiles"
SIZE="$(du -sk --apparent-size --exclude=DEBIAN "$ROOT" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" -e "s|@MAINTAINER@|$MAINTAINER|" packaging/debian/control.in > "$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums" "$ROOT/DEBIAN/control"

# Normalised metadata: modes (executables stay executable), times.
find "$ROOT" -type d -exec chmod 0755 {} +
# Under /opt/slapos-node only the runtime is executed: scripts run through it, addons are loaded by it.
find "$ROOT" -type f -exec chmod 0644 {} +
chmod 0755 "$APP/node/bin/node" "$ROOT/usr/bin/slapos" "$ROOT"/DEBIAN/p*
chmod 0640 "$ROOT/etc/opt/slapos/slapos.cfg"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# No path of this machine inside (the runtime's own build paths went with its debug information).
if grep -rlaF -e "$PROJECT" -e "$WORK" "$ROOT" >"$WORK/leaks" 2>/dev/null; then
  echo "package: build paths found in:" >&2; sed "s|^$ROOT/||" "$WORK/leaks" >&2; exit 1
fi

mkdir -p "$OUT"
DEB="$(cd "$OUT" && pwd)/slapos-node_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group "${ZARGS[@]}" --build "$ROOT" "$DEB" >&2
echo "$DEB"
