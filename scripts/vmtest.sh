#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# vmtest.sh: boot Debian's packaged 6.1 kernel under qemu (software emulation) with a busybox
# initramfs holding vfswatch and the end-to-end suite, run the suite there with --backend
# fentry, then the model-based exactness test (VMTEST_SEEDS seeds, settled), and report
# "vmtest: N passed, N failed, N skipped". Non-zero exit when the VM does not boot, the backend
# does not attach (its tests would skip), or any test fails. VMTEST_BENCH=1 (make bench, with
# VMTEST_CMD=true VMTEST_SEEDS=0): the BPF backends' write overhead in the VM instead.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VM=$BUILD/vm
SUITE=${VMTEST_SUITE:-FentryE2E FentrySettled FentryExactness}	# which test classes run inside
SEEDS=${VMTEST_SEEDS:-50}	# model seeds (50 operations each) run inside; 0: none
BACKEND_TIMEOUT=${VMTEST_TIMEOUT:-1500}	# seconds for boot + suite
PY=/usr/bin/python3

die() { echo "vmtest: $*" >&2; echo "vmtest: 0 passed, 1 failed, 0 skipped"; exit 1; }

for t in qemu-system-x86_64 /bin/busybox "$PY" cpio apt-get dpkg-deb; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t (run scripts/deps.sh)"
done
[ -x "$BUILD/vfswatch" ] || die "build first: make"
mkdir -p "$VM"

# 1. Debian's 6.1 kernel, fetched once and cached under build/.
kernel=$(ls "$VM"/vmlinuz-6.1.* 2>/dev/null | tail -n 1 || true)
if [ -z "$kernel" ]; then
	pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' |
		sort -V | tail -n 1)
	if [ -z "$pkg" ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' |
			awk '{print $1}' | sort -V | tail -n 1)
	fi
	[ -n "$pkg" ] || die "no linux-image-6.1.0-*-amd64 package in the archive"
	(cd "$VM" && apt-get download -qq "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
	rm -rf "$VM/kpkg"
	dpkg-deb -x "$VM"/"$pkg"_*.deb "$VM/kpkg"
	cp "$VM"/kpkg/boot/vmlinuz-* "$VM/"
	rm -rf "$VM/kpkg" "$VM"/*.deb
	kernel=$(ls "$VM"/vmlinuz-6.1.* | tail -n 1)
fi

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
cp tests/integration/*.py "$root/tests/"
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
/usr/bin/vfswatch probe
${VMTEST_CMD:-python3 /tests/run.py 'test_*.py' $SUITE 2>&1}
[ "$SEEDS" -gt 0 ] && python3 /tests/model/model.py --backend fentry --seeds $SEEDS 2>&1
[ -n "${VMTEST_BENCH:-}" ] && python3 /tests/bench/vm_overhead.py 2>&1
echo "vmtest-guest: done"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM/initramfs.gz"

# 3. Boot it, time-boxed; the guest's console is our stdout.
out=$VM/console.log
echo "vmtest: booting $(basename "$kernel") under qemu (TCG), suite $SUITE"
set +e
timeout "$BACKEND_TIMEOUT" qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m 2048 \
	-kernel "$kernel" -initrd "$VM/initramfs.gz" -nographic -no-reboot \
	-append "console=ttyS0 panic=-1 rdinit=/init quiet" </dev/null >"$out" 2>&1
rc=$?
set -e
tr -d '\r' <"$out" | grep -v '^\[' | sed 's/^/  | /'
[ $rc -eq 124 ] && die "timed out after ${BACKEND_TIMEOUT}s"
grep -q 'vmtest-guest: kernel' "$out" || die "the VM did not boot (qemu exit $rc)"
if [ -n "${VMTEST_BENCH:-}" ]; then	# make bench: the overhead figures only
	tr -d '\r' <"$out" | grep -q '^vmbench: done' || die "the VM benchmark did not finish"
	exit 0
fi
line=$(tr -d '\r' <"$out" | grep '^integration: ' | tail -n 1)
[ -n "$line" ] || die "the suite did not report (see $out)"
set -- $(echo "$line" | sed 's/[^0-9 ]//g')
passed=$1 failed=$2 skipped=$3
if [ "$SEEDS" -gt 0 ] && [ -z "${VMTEST_CMD:-}" ]; then
	line=$(tr -d '\r' <"$out" | grep '^model: ' | tail -n 1)
	if [ -z "$line" ]; then
		echo "vmtest: the model test did not report" >&2
		failed=$((failed + 1))
	else
		set -- $(echo "$line" | sed 's/[^0-9 ]//g')
		passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + $3))
	fi
fi
# A skip here means the fentry backend did not attach: that is a failure of this test.
if [ "$skipped" -gt 0 ]; then
	failed=$((failed + skipped))
	skipped=0
	echo "vmtest: tests were skipped in the VM: the backend did not attach" >&2
fi
[ "$passed" -gt 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "vmtest: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
