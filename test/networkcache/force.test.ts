// The force list and the skip rules around the cache (no server needed):
// a forced URL is never built, a blacklisted or unconfigured one is.
import test from 'ava';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { downloadSkipReason } from '../../src/networkcache/download.js';
import { uploadSkipReason } from '../../src/networkcache/upload.js';
import { CacheForcedError, installFromCache } from '../../src/software/cache-step.js';
import { tempDir } from '../helpers/system.js';
import { settingsFor } from './helpers.js';

const url = 'https://lab.example/raw/1.0.5/software.cfg';

test('skip reasons: unconfigured, blacklisted prefixes, no key, shared parts', (t) => {
  const base = settingsFor('http://127.0.0.1:9', '');
  t.regex(downloadSkipReason({ ...base, downloadDirUrl: undefined }, url) ?? '', /not configured/);
  t.regex(downloadSkipReason({ ...base, downloadBlacklist: ['https://lab.example/raw/'] }, url) ?? '', /blacklisted.*raw/);
  t.is(downloadSkipReason(base, url), undefined);
  t.regex(uploadSkipReason(base, url, false) ?? '', /no signature-private-key-file/);
  const signing = { ...base, signatureKeyFile: '/k.pem' };
  t.is(uploadSkipReason(signing, url, false), undefined);
  t.regex(uploadSkipReason({ ...signing, uploadBlacklist: ['/', 'https://lab.example/'] }, url, false) ?? '', /blacklisted/);
  t.regex(uploadSkipReason(signing, url, true) ?? '', /shared parts/);
});

test('a URL of the force list is never built: a failed download or an existing directory is an error', async (t) => {
  const root = tempDir(t);
  const softwarePath = path.join(root, '0123456789abcdef0123456789abcdef');
  const log = pino({ level: 'silent' });
  // No trusted certificate: the download fails at once.
  const cache = settingsFor('http://127.0.0.1:9', '', { forceList: ['https://lab.example/raw/1.0.'] });
  await t.throwsAsync(installFromCache({ cache, url, softwarePath, user: undefined, minFreeSpace: 0, log }), {
    instanceOf: CacheForcedError, message: /Binary cache forced for .*, but failed to download, will retry again/,
  });
  t.false(await installFromCache({ cache: { ...cache, forceList: [] }, url, softwarePath, user: undefined, minFreeSpace: 0, log }), 'not forced: build');
  mkdirSync(softwarePath);
  await t.throwsAsync(installFromCache({ cache, url, softwarePath, user: undefined, minFreeSpace: 0, log }), {
    instanceOf: CacheForcedError, message: /already exists, will retry again/,
  });
});
