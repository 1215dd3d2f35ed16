#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# vmtest.sh: boot Debian's packaged kernels under qemu (software emulation) with a busybox
# initramfs holding vfswatch and the end-to-end suite, and run the suite there.
#   KERNELS="5.10 6.12" which kernels (5.10 from bullseye, 6.1 from bookworm, 6.12 from
#                       bookworm-backports), each fetched once and cached under build/vm/
#   VMTEST_ALL=1        every backend the kernel's probe says it can run (fentry, tracepoint,
#                       fanotify): its end-to-end classes and its model runs; otherwise the
#                       fentry classes and the fentry model runs only (what the host cannot run)
#   VMTEST_SEEDS=N      model seeds (50 operations each) per backend run; 0: none
#   VMTEST_CLASSES="…"  these end-to-end classes instead (make burst: test_liveness.FentryBursts.)
#   VW_BURSTS=N         bursts per burst test, VW_READY_RUNS=N runs of the ready test
#                       (test_liveness.py)
#   VMTEST_SHORT="5.10" kernels that run the E2E scenario class only (the default, so that
#                       make check stays under 10 minutes of VM time; empty: none)
# Reports "vmtest: N passed, N failed, N skipped" over every kernel, and writes the measured
# support matrix (kernel x backend: pass, fail, or why it cannot run) to build/vm/matrix.md.
# Non-zero exit when a VM does not boot, the fentry backend does not attach where it should
# (its tests would skip), or any test fails. VMTEST_BENCH=1 (make bench, with VMTEST_CMD=true
# VMTEST_SEEDS=0): the BPF backends' write overhead in the VM instead.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VM=$BUILD/vm
KERNELS=${KERNELS:-5.10 6.12}
SHORT=${VMTEST_SHORT-5.10}	# kernels that run the E2E scenarios only (make check: under 10 min)
BACKENDS=fentry
[ "${VMTEST_ALL:-0}" = 1 ] && BACKENDS=all SHORT=
SEEDS=${VMTEST_SEEDS:-25}	# model seeds (50 operations each) per backend run inside; 0: none
BACKEND_TIMEOUT=${VMTEST_TIMEOUT:-1500}	# seconds for one kernel's boot + suite
PY=/usr/bin/python3

die() { echo "vmtest: $*" >&2; echo "vmtest: 0 passed, 1 failed, 0 skipped"; exit 1; }

for t in qemu-system-x86_64 /bin/busybox "$PY" cpio apt-get dpkg-deb; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t (run scripts/deps.sh)"
done
[ -x "$BUILD/vfswatch" ] || die "build first: make"
mkdir -p "$VM"

# 1. The kernel: Debian's package of that series, fetched once with apt-get download through a
# private sources list under build/ (bullseye for 5.10, bookworm for 6.1, bookworm-backports
# for 6.12; the system's own lists are never touched), its vmlinuz cached under build/vm/.
APT=$(pwd)/$VM/apt
apt_opts() {
	echo "-o Dir::Etc::sourcelist=$APT/sources.list -o Dir::Etc::sourceparts=/dev/null" \
		"-o Dir::State::Lists=$APT/lists -o Dir::Cache=$APT/cache"
}
fetch_kernel() {	# fetch_kernel VERSION: sets $kernel (and its modules under $VM/modules/)
	KVER=$1
	kernel=$(ls "$VM"/vmlinuz-"$KVER".* 2>/dev/null | sort -V | tail -n 1 || true)
	[ -z "$kernel" ] || [ ! -d "$VM/modules/${kernel##*/vmlinuz-}" ] || return 0
	case $KVER in
	5.10) re='^linux-image-5\.10\.0-[0-9]+-amd64$' ;;
	6.1) re='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
	6.12) re='^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
	*) die "no package known for kernel $KVER (5.10, 6.1, 6.12)" ;;
	esac
	mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
	key=/usr/share/keyrings/debian-archive-keyring.gpg
	for suite in bullseye bookworm bookworm-backports; do
		echo "deb [signed-by=$key] http://deb.debian.org/debian $suite main"
	done >"$APT/sources.list"
	# shellcheck disable=SC2046
	apt-get $(apt_opts) update -qq >/dev/null 2>&1 || die "apt-get update (private list) failed"
	# shellcheck disable=SC2046
	pkg=$(apt-cache $(apt_opts) search --names-only "$re" 2>/dev/null | awk '{print $1}' |
		sort -V | tail -n 1)
	[ -n "$pkg" ] || die "no package for kernel $KVER in the archive"
	# shellcheck disable=SC2046
	(cd "$VM" && apt-get $(apt_opts) download -qq "$pkg" >/dev/null 2>&1) ||
		die "apt-get download $pkg failed"
	rm -rf "$VM/kpkg"
	dpkg-deb -x "$VM"/"$pkg"_*.deb "$VM/kpkg"
	cp "$VM"/kpkg/boot/vmlinuz-* "$VM/"
	keep_modules "$VM"/kpkg/lib/modules/*
	rm -rf "$VM/kpkg" "$VM"/*.deb
	kernel=$(ls "$VM"/vmlinuz-"$KVER".* | sort -V | tail -n 1)
}

# The loop device and ext4 (which mounts ext2) with what they need, in load order: on kernels
# whose tmpfs cannot be marked by fanotify (no fsid before 6.x), the guest (tests/vmguest.py)
# runs that backend on an ext2 image instead. Modules the kernel has built in are simply not there.
keep_modules() {	# keep_modules LIB_MODULES_DIR
	mdir=$1
	dst=$VM/modules/${mdir##*/}
	rm -rf "$dst"
	mkdir -p "$dst"
	: >"$dst/order"
	for m in crc32c_generic loop ext4; do
		add_module "$mdir" "$dst" "$m"
	done
}
add_module() {	# add_module LIB_MODULES_DIR DEST NAME: NAME after what it depends on
	ko=$(find "$1" -name "$3.ko" | head -n 1)
	[ -n "$ko" ] && ! grep -qx "$3.ko" "$2/order" || return 0
	for dep in $(tr '\0' '\n' <"$ko" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
		add_module "$1" "$2" "$dep"
	done
	cp "$(find "$1" -name "$3.ko" | head -n 1)" "$2/"	# (sh has no locals: $ko is reused)
	echo "$3.ko" >>"$2/order"
}

# 2. The initramfs: busybox for the basics, real binaries (with their libraries) for the rest.
root=$VM/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/proc" "$root/sys" "$root/dev" \
	"$root/tmp" "$root/run" "$root/etc" "$root/tests" "$root/sys/fs/bpf"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done

copy_with_libs() {	# copy_with_libs SRC DEST: a binary plus every library ldd names
	rm -f "$root$2"
	cp -L "$1" "$root$2"
	ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
	done
}
for k in $KERNELS; do
	fetch_kernel "$k"
	kv=${kernel##*/vmlinuz-}
	mkdir -p "$root/lib/modules"
	[ ! -d "$VM/modules/$kv" ] || cp -r "$VM/modules/$kv" "$root/lib/modules/"
done
copy_with_libs "$BUILD/vfswatch" /usr/bin/vfswatch
for b in cp dd rm mkdir touch mv ln truncate sed tar; do
	copy_with_libs "$(command -v $b)" "/bin/$b"
done
for b in vim.tiny rsync git; do	# tools the settled scenarios drive
	copy_with_libs "$(command -v $b)" "/usr/bin/$b"
done
copy_with_libs "$PY" /usr/bin/python3
pylib=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$root$pylib"
(cd "$pylib" && tar cf - --exclude=test --exclude=idlelib --exclude=tkinter --exclude=ensurepip \
	--exclude=lib2to3 --exclude=pydoc_data --exclude='config-*' --exclude=__pycache__ \
	--exclude=turtledemo --exclude=distutils --exclude=site-packages --exclude=dist-packages .) |
	(cd "$root$pylib" && tar xf -)
for so in "$root$pylib"/lib-dynload/*.so; do
	ldd "$so" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
	done
done
mkdir -p "$root/tests/model" "$root/tests/bench"
cp tests/integration/*.py tests/vmguest.py "$root/tests/"
cp tests/model/model.py "$root/tests/model/"
cp tests/bench/watchers.py tests/bench/vm_overhead.py "$root/tests/bench/"
mkdir -p "$root/usr/share/git-core/templates"

cat >"$root/init" <<EOF
#!/bin/sh
export PATH=/bin:/usr/bin:/sbin HOME=/tmp VFSWATCH=/usr/bin/vfswatch PYTHONDONTWRITEBYTECODE=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
echo "vmtest-guest: kernel \$(uname -r)"
export VMTEST_BACKENDS="$BACKENDS" VMTEST_SEEDS=$SEEDS VMTEST_ALL=${VMTEST_ALL:-0}
export VMTEST_CLASSES="${VMTEST_CLASSES:-}" VW_BURSTS=${VW_BURSTS:-5} VW_READY_RUNS=${VW_READY_RUNS:-100}
grep -q vmtest_short=1 /proc/cmdline && export VMTEST_SHORT=1
${VMTEST_CMD:-python3 /tests/vmguest.py 2>&1}
[ -n "${VMTEST_BENCH:-}" ] && python3 /tests/bench/vm_overhead.py 2>&1
echo "vmtest-guest: done"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM/initramfs.gz"

# 3. Boot each kernel, time-boxed; the guest's console is our stdout.
passed=0 failed=0 skipped=0
matrix=$VM/matrix.md
{
	echo "| kernel | fentry | tracepoint | fanotify |"
	echo "|---|---|---|---|"
} >"$matrix.tmp"
for k in $KERNELS; do
	fetch_kernel "$k"
	out=$VM/console-$k.log
	short=0
	case " $SHORT " in *" $k "*) short=1 ;; esac
	echo "vmtest: booting $(basename "$kernel") under qemu (TCG), backends: $BACKENDS"
	t0=$(date +%s)
	set +e
	timeout "$BACKEND_TIMEOUT" qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m 2048 \
		-kernel "$kernel" -initrd "$VM/initramfs.gz" -nographic -no-reboot \
		-append "console=ttyS0 panic=-1 rdinit=/init quiet vmtest_short=$short" </dev/null \
		>"$out" 2>&1
	rc=$?
	set -e
	tr -d '\r' <"$out" | grep -v '^\[' | sed 's/^/  | /'
	if [ $rc -eq 124 ]; then
		echo "vmtest: $k: timed out after ${BACKEND_TIMEOUT}s" >&2
		failed=$((failed + 1))
		continue
	fi
	if ! grep -q 'vmtest-guest: kernel' "$out"; then
		echo "vmtest: $k: the VM did not boot (qemu exit $rc)" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ -n "${VMTEST_BENCH:-}" ]; then	# make bench: the overhead figures only
		tr -d '\r' <"$out" | grep -q '^vmbench: done' || die "the VM benchmark did not finish"
		exit 0
	fi
	echo "vmtest: $k took $(($(date +%s) - t0)) s"
	# a BPF set not tested here must load and attach all the same (one test each)
	for b in $(tr -d '\r' <"$out" | sed -n 's/^vmtest-loads: \([a-z-]*\) yes$/\1/p'); do
		passed=$((passed + 1))
	done
	if tr -d '\r' <"$out" | grep '^vmtest-loads: [a-z-]* no' >&2; then
		failed=$((failed + 1))
	fi
	row="| $k ($(tr -d '\r' <"$out" | sed -n 's/.*vmtest-guest: kernel //p' | head -n 1)) |"
	for b in fentry tracepoint fanotify; do
		line=$(tr -d '\r' <"$out" | grep "^vmtest-backend: $b " | tail -n 1)
		case $line in
		"")
			cell="not run" ;;
		*unusable:*)
			cell="cannot run: $(echo "$line" | sed 's/.*unusable: //; s/|.*//' | cut -c1-120)"
			skipped=$((skipped + 1))
			# the fentry backend is what the VM is for: where it should run, it must
			[ "$b" = fentry ] && failed=$((failed + 1)) ;;
		*)
			set -- $(echo "${line#*$b }" | sed 's/[^0-9 ]//g')
			passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + $3))
			# a skipped fentry test means the backend did not attach after all: a failure
			# here (the other backends' skips are the host's, with their reasons)
			f=$2
			if [ "$b" = fentry ]; then
				f=$(($2 + $3))
				failed=$((failed + $3)) skipped=$((skipped - $3))
			fi
			if [ "$f" -eq 0 ] && [ "$1" -gt 0 ]; then
				cell="pass ($1 tests$([ "$3" -eq 0 ] || echo ", $3 skipped"))"
			else
				cell="FAIL ($f of $(($1 + $2 + $3)))"
			fi
			# the build of the programs the kernel got, and a disk other than tmpfs
			build=$(tr -d '\r' <"$out" | sed -n "s/^vmtest-build: $b \([a-z]*\):.*/\1/p" |
				tail -n 1)
			[ -z "$build" ] || cell="$cell, $build build"
			! tr -d '\r' <"$out" | grep -q "^vmtest-where: $b ext2" ||
				cell="$cell, on ext2 (tmpfs cannot be marked)" ;;
		esac
		row="$row $cell |"
	done
	echo "$row" >>"$matrix.tmp"
done
mv "$matrix.tmp" "$matrix"
echo "vmtest: support matrix (also in $matrix):"
sed 's/^/  /' "$matrix"
[ "$passed" -gt 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "vmtest: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
