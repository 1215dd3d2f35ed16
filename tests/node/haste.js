// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// haste.js ROOT CACHE_DIR watchman|node SHA1(0|1): jest-haste-map's file map of ROOT, built with
// its Watchman crawler (through whatever `watchman` is on PATH) or its node crawler, printed as
// JSON {relative path: {size, sha1}}. A cache dir kept between runs makes the next build
// incremental (Watchman: a query "since" the clock of the last).
'use strict';
const path = require('path');
const HasteMap = require('jest-haste-map').default;

(async () => {
  const [root, cache, mode, sha1] = process.argv.slice(2);
  const map = await HasteMap.create({
    id: 'vfswatch-test',
    rootDir: root,
    roots: [root],
    extensions: ['js', 'json', 'ts'],
    platforms: [],
    maxWorkers: 1,
    useWatchman: mode === 'watchman',
    forceNodeFilesystemAPI: mode !== 'watchman',
    computeSha1: sha1 === '1',
    cacheDirectory: cache,
    retainAllFiles: true,
    resetCache: false,
    throwOnModuleCollision: false,
  });
  const {hasteFS} = await map.build();
  const out = {};
  for (const f of hasteFS.getAllFiles().sort()) {
    out[path.relative(root, f)] = {
      size: hasteFS.getSize(f),
      sha1: sha1 === '1' ? hasteFS.getSha1(f) : null,
    };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch(e => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
