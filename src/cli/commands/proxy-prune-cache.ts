// `slapos proxy prune-cache`: the master's maintenance of its network cache
// (docs/software.md, "The cache server in our master"): removes the blobs no
// shadir entry names, once they are older than --min-age-hours (an upload
// stores its blob before its entry). The reference proxy's /shacache/update
// drops entries whose blob is missing instead; ours keeps every entry.
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';

export function pruneCacheCommand(): Command {
  const command = new Command('prune-cache')
    .summary("remove the network cache's blobs that no shadir entry names")
    .description(
      'Lists the blobs under the cache directory ([slapproxy] shacache_directory, by default shacache/ beside an SQLite database) ' +
        'and removes those no shadir entry of the database names and older than --min-age-hours (default 24: an upload stores ' +
        'its blob first, then its entry). Safe while masters run: a download in progress keeps reading a removed blob.',
    )
    .option('-u, --database-uri <uri>', 'SQLite file or postgresql:// URI ([slapproxy] database_uri)')
    .option('--min-age-hours <hours>', 'keep unreferenced blobs younger than this', '24')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--json', 'print {directory, kept, removed: [{sha512, size}], freedBytes, dryRun} as JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const config = ctx.config().slapproxy;
    const uri = options.databaseUri !== undefined ? String(options.databaseUri) : config.database_uri;
    const hours = Number(options.minAgeHours);
    if (!Number.isFinite(hours) || hours < 0) throw new CliError(`--min-age-hours: not a number of hours: ${String(options.minAgeHours)}`);
    const [{ cacheDirectory, openStore }, { BlobStore, prunableBlobs }] = await Promise.all([
      import('../../master/server.js'), import('../../master/cache-storage.js'),
    ]);
    const directory = cacheDirectory({ database_uri: uri, shacache_directory: config.shacache_directory });
    if (!directory) throw new CliError('no cache directory: set [slapproxy] shacache_directory (required with PostgreSQL)');
    if (!existsSync(directory)) throw new CliError(`${directory}: no such cache directory`);
    if (!/^postgres(ql)?:\/\//.test(uri) && !existsSync(uri)) throw new CliError(`${uri}: no such database`);
    const store = await openStore(uri, false);
    let referenced: Set<string>;
    try {
      referenced = new Set(await store.read((tx) => tx.listShadirBlobs()));
    } finally {
      await store.close();
    }
    const blobs = new BlobStore({ directory, quota: Number.MAX_SAFE_INTEGER, maxBlob: Number.MAX_SAFE_INTEGER });
    const stored = blobs.list();
    const prune = prunableBlobs(stored, referenced, Date.now(), hours * 3600_000);
    const dryRun = options.dryRun === true;
    for (const blob of prune) {
      if (!dryRun) blobs.remove(blob.sha512);
      ctx.log.info({ sha512: blob.sha512.slice(0, 16), size: blob.size, dry_run: dryRun }, dryRun ? 'would remove an unreferenced blob' : 'removed an unreferenced blob');
    }
    const freedBytes = prune.reduce((a, b) => a + b.size, 0);
    const result = { directory, kept: stored.length - prune.length, removed: prune.map(({ sha512, size }) => ({ sha512, size })), freedBytes, dryRun };
    ctx.out(options.json ? JSON.stringify(result, null, 2)
      : `${dryRun ? 'would remove' : 'removed'} ${prune.length} unreferenced blob(s), ${freedBytes} bytes; kept ${result.kept} in ${directory}`);
    return 0;
  });
}
