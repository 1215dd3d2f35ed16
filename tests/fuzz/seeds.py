#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""seeds.py: writes the seed corpora of the text and binary targets (tests/fuzz/corpus/<target>/).

The fanotify seeds are recorded from the kernel (FUZZ_FAN_RECORD, see fuzz_fanotify.c); the
state and changes seeds are files a real daemon wrote (make_files below). Run it again after
changing a format; the files it writes are checked in.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def config():
    with open(os.path.join(ROOT, 'scripts', 'config.example.json'), 'rb') as f:
        put('config', 'example', f.read())
    put('config', 'full', json.dumps({
        'settle_ms': 20, 'max_delay_ms': 500, 'batch_max': 100, 'backend': 'fanotify',
        'state_dir': '/var/lib/vfswatch', 'run_dir': '/run/vfswatch', 'journal_mb': 4,
        'user_projects': 2, 'metrics_file': '/run/m.prom', 'socket_group': 'adm',
        'skip_identical': True, 'verbose': 1,
        'projects': [{'name': 'p', 'root': '/srv/p', 'ignore': ['*.o', 'build/'],
                      'gitignore': True, 'default_ignores': False, 'readers': ['nobody', '@adm'],
                      'analyzers': [{'name': 'lint', 'command': ['/bin/true', '{path}'],
                                     'match': ['*.c'], 'events': ['create', 'modify'],
                                     'batch': False, 'concurrency': 2, 'timeout_ms': 1000,
                                     'retries': 1, 'retry_delay_ms': 10, 'user': 'owner',
                                     'limits': {'cpu_s': 5, 'memory_mb': 64, 'nofile': 64}},
                                    {'name': 'all', 'command': ['/bin/cat'], 'batch': True,
                                     'on_delete': True}]}]}))
    put('config', 'empty', '')
    put('config', 'nested', '{"projects":' + '[' * 50 + ']' * 50 + '}')
    put('config', 'wrong-types', '{"settle_ms":"x","projects":{}}')


def control():
    for i, req in enumerate([{'cmd': 'status'}, {'cmd': 'add', 'root': '/tmp/x'},
                             {'cmd': 'remove', 'name': 'x'}, {'cmd': 'nope'}, [1, 2]]):
        put('control', 'req-%d' % i, json.dumps(req) + '\n')
    put('control', 'partial', '{"cmd":"sta')
    put('control', 'binary', b'\x00\xff{"cmd"\x00:1}\n')


def clients():
    # the first byte picks the peer: 0 root, 1 uid 2001 (owns "mine"), 2 uid 2002
    reqs = [{'cmd': 'changes', 'project': 'proj'},
            {'cmd': 'changes', 'project': 'mine', 'since': '0'},
            {'cmd': 'subscribe', 'project': 'mine'},
            {'cmd': 'changes', 'project': 'proj', 'since': '0000000000000000.1'},
            {'cmd': 'subscribe', 'project': 'proj', 'match': ['*.c', 'a/**'],
             'events': ['create', 'delete']},
            {'cmd': 'subscribe', 'project': '/tmp', 'since': 'x'},
            {'cmd': 'add', 'root': '/tmp/y', 'name': 'y'}, {'cmd': 'remove', 'name': 'y'},
            {'cmd': 'changes', 'project': 'proj', 'match': [1]},
            {'cmd': 'changes', 'project': 'proj', 'events': ['bogus']}]
    for i, req in enumerate(reqs):
        for peer in range(3):
            put('clients', 'req-%d-peer%d' % (i, peer), chr(peer) + json.dumps(req) + '\n')


def ignore():
    put('ignore', 'gitignore',
        '# comment\n*.o\n!keep.o\nbuild/\n/top\n**/deep/**\na?c\n[a-z]*.tmp\n\\#lit\n\0'
        'x.o\nkeep.o\nbuild/x\ntop\nsub/top\na/deep/b\nabc\nq.tmp\n#lit\n')
    put('ignore', 'stars', '*a*a*a*a*a*b\n**/**/**/x\n\0' + 'a' * 60 + '\n' + 'x/' * 30 + 'x\n')


def change(op, path, old=b'', ftype=1, flags=0, project=1, old_project=0, seal=True):
    data = (path + b'\0' if path else b'') + (old + b'\0' if old else b'')
    plen = len(path) + 1 if path else 0
    olen = len(old) + 1 if old else 0
    body = struct.pack('<QQQQIIIIIIHHHHII16s', 0, 42, 0, 0, 0x800001, 100, 100, 0, project,
                       old_project, op, ftype, plen, olen, 100, 0, b'writer')
    size = 16 + len(body) + len(data)
    rec = struct.pack('<HHIQ', 1, flags, size, 123) + body + data
    return struct.pack('<H', len(rec) | (0x8000 if seal else 0)) + rec


def result(pid, ret):
    rec = struct.pack('<HHIQqII', 2, 0, 32, 124, ret, pid, pid)
    return struct.pack('<H', len(rec)) + rec


def ringbuf():
    put('ringbuf', 'modify', change(1, b'src/main.c'))
    put('ringbuf', 'rename', change(7, b'b/new', b'a/old', project=1, old_project=2))
    put('ringbuf', 'pending', change(2, b'made', flags=1) + result(100, 0) +
        change(3, b'gone', flags=1) + result(100, -2))
    put('ringbuf', 'odd-names', change(2, b'a\nb\\"\x01\xff\xfe') + change(5, b'./x/../y', flags=8))
    put('ringbuf', 'truncated', change(1, b'deep/er', flags=2) + change(8, b'two/inner'))


def json_names():
    put('json', 'plain', b'src/a.c\0src/b.c')
    put('json', 'odd', b'new\nline "quoted" back\\slash\x01\x1f\0\xff\xfe\xc3\x28 \xe2\x82')
    put('json', 'utf8', 'caf\u00e9/\U0001f600\0\u2028'.encode())


def daemon_files():
    """A real daemon's snapshot, journal and change log of a small tree."""
    exe = os.environ.get('VFSWATCH', os.path.join(ROOT, 'build', 'vfswatch'))
    tmp = tempfile.mkdtemp(prefix='vw-seeds-')
    try:
        proj, state = os.path.join(tmp, 'p'), os.path.join(tmp, 'state')
        os.makedirs(os.path.join(proj, 'dir', 'sub'))
        for name in ['a.c', 'dir/b', 'dir/sub/c', 'odd\nname']:
            with open(os.path.join(proj, name), 'w') as f:
                f.write('x')
        d = subprocess.Popen([exe, 'run', '--backend', 'fanotify', '--state-dir', state, '--run-dir',
                              os.path.join(tmp, 'run'), '--no-pin', '-w', proj],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        d.stdout.readline()     # ready
        time.sleep(0.5)
        with open(os.path.join(proj, 'new'), 'w') as f:
            f.write('y')
        os.rename(os.path.join(proj, 'dir'), os.path.join(proj, 'moved'))
        time.sleep(0.5)
        d.terminate()
        d.wait()
        files = {f.rsplit('.', 1)[1]: os.path.join(state, f) for f in os.listdir(state)}
        snap = open(files['snap'], 'rb').read()
        jrnl = open(files['journal'], 'rb').read() if 'journal' in files else b''
        put('state', 'daemon', bytes([3]) + struct.pack('<H', len(snap)) + snap + jrnl)
        put('state', 'daemon-torn', bytes([0]) + struct.pack('<H', len(snap)) + snap + jrnl[:-3])
        log = open(files['changes'], 'rb').read()
        put('changes', 'daemon', b'\x01' + log)
        put('changes', 'torn', b'\x02' + log[:-5])
        put('changes', 'foreign', b'\x00' + b'vfswatch-changes 9 0 1\n')
    finally:
        shutil.rmtree(tmp)


def fanotify():
    exe = os.path.join(ROOT, 'build-fuzz', 'fuzz', 'fuzz_fanotify')
    out = os.path.join(HERE, 'corpus', 'fanotify')
    os.makedirs(out, exist_ok=True)
    subprocess.run([exe], env=dict(os.environ, FUZZ_FAN_RECORD=out), check=True)


if __name__ == '__main__':
    which = sys.argv[1:] or ['config', 'control', 'clients', 'ignore', 'ringbuf', 'json_names',
                             'daemon_files', 'fanotify']
    for w in which:
        globals()[w]()
