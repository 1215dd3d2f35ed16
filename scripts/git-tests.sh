#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# git-tests.sh: git's own tests against `vfswatch git-fsmonitor` (make git-tests). Debian's source
# package of the git this host has is fetched through a private sources list under build/ (the
# system's lists are never touched), built without its optional parts, and its fsmonitor and
# status tests are run with GIT_TEST_FSMONITOR naming the hook while a daemon runs. Ends with
# "git-tests: N passed, N failed, N skipped" (git's own counts, summed).
#   GIT_TESTS="t7519-status-fsmonitor.sh ..."  the test scripts (default below)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
W=$(pwd)/$BUILD/git-tests
APT=$W/apt
VFSWATCH=$(pwd)/$BUILD/vfswatch
TESTS=${GIT_TESTS:-"t7519-status-fsmonitor.sh t7063-status-untracked-cache.sh t7508-status.sh"}
die() { echo "git-tests: $*" >&2; exit 1; }
[ -x "$VFSWATCH" ] || die "build first: make"
command -v dpkg-source >/dev/null || die "dpkg-source is missing (scripts/deps.sh installs it)"

# 1. git's source, the version installed here, once
ver=$(dpkg-query -W -f='${Version}' git)
src=$W/git-${ver#*:}
if [ ! -d "$src" ]; then
	mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$W/dl"
	key=/usr/share/keyrings/debian-archive-keyring.gpg
	{
		echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm main"
		echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm-updates main"
		echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main"
	} >"$APT/sources.list"
	opts="-o Dir::Etc::sourcelist=$APT/sources.list -o Dir::Etc::sourceparts=/dev/null
		-o Dir::State::Lists=$APT/lists -o Dir::Cache=$APT/cache"
	# shellcheck disable=SC2086
	apt-get $opts update -qq >/dev/null 2>&1 || die "apt-get update (private list) failed"
	# shellcheck disable=SC2086
	(cd "$W/dl" && apt-get $opts source --download-only -qq "git=$ver" >/dev/null 2>&1) ||
		die "apt-get source git=$ver failed"
	dpkg-source -x "$W"/dl/git_*.dsc "$src" >/dev/null || die "dpkg-source -x failed"
	rm -rf "$W/dl"
fi

# 2. built for its tests: no curl, TLS, translations, Tcl/Tk or Perl parts
flags="NO_CURL=1 NO_OPENSSL=1 NO_GETTEXT=1 NO_TCLTK=1 NO_EXPAT=1 NO_PYTHON=1"
# shellcheck disable=SC2086
make -C "$src" -j"$(nproc)" $flags all >"$W/build.log" 2>&1 || die "building git failed: $W/build.log"

# 3. a daemon, and the hook as git's tests call it
run=$W/run
rm -rf "$run" "$W/idle"
mkdir -p "$run" "$W/idle"
"$VFSWATCH" run --run-dir "$run" --no-state --watch "$W/idle" >/dev/null 2>"$W/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
i=0
while [ ! -S "$run/client.sock" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$run/client.sock" ] || die "the daemon did not start: $W/daemon.log"
cat >"$W/hook" <<EOF
#!/bin/sh
exec "$VFSWATCH" git-fsmonitor --run-dir "$run" "\$@"
EOF
chmod +x "$W/hook"

# 4. the tests; git's harness prints "# passed all N test(s)" or "# failed N among M test(s)"
pass=0 fail=0 skip=0
for t in $TESTS; do
	[ -f "$src/t/$t" ] || { echo "git-tests: $t: not in git $ver, skipped"; skip=$((skip + 1)); continue; }
	log=$W/${t%.sh}.log
	(cd "$src/t" && GIT_TEST_FSMONITOR="$W/hook" GIT_TEST_FSMONITOR_TOKEN=true \
		sh "./$t" -v -x >"$log" 2>&1) || true
	n=$(grep -c '^ok ' "$log" || true)
	s=$(grep -c '^ok .*# skip' "$log" || true)
	f=$(grep -c '^not ok ' "$log" || true)
	k=$(grep -c '^not ok .*# TODO' "$log" || true)	# known breakages git marks itself
	echo "git-tests: $t: $((n - s)) passed, $((f - k)) failed, $((s + k)) skipped ($log)"
	pass=$((pass + n - s)) fail=$((fail + f - k)) skip=$((skip + s + k))
done
echo "git-tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
