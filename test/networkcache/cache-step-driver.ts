// Child process of extract-kill.test.ts (not a test): the software loop's use
// of the binary cache for one release — installFromCache, then `.completed`
// as the loop writes it after reporting `available` — in a process of its own,
// so that SLAPOS_TEST_KILL_AT can kill it at a step boundary. Argument: a JSON
// job; prints {"fromCache": boolean}. No ava import here (not run by ava).
import path from 'node:path';
import { pino } from 'pino';
import { DEFAULT_LIMITS } from '../../src/networkcache/settings.js';
import { installFromCache } from '../../src/software/cache-step.js';
import { markCompleted } from '../../src/software/install.js';

interface Job {
  base: string;
  certPem: string;
  url: string;
  softwareRoot: string;
  hash: string;
  user: { uid: number; gid: number; name: string };
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const softwarePath = path.join(job.softwareRoot, job.hash);
const fromCache = await installFromCache({
  cache: {
    downloadCacheUrl: `${job.base}/shacache`, downloadDirUrl: `${job.base}/shadir`, certificateList: job.certPem,
    downloadBlacklist: [], uploadBlacklist: [], forceList: [], tls: {}, limits: DEFAULT_LIMITS,
  },
  url: job.url, softwarePath, user: job.user, minFreeSpace: 0, log: pino({ level: 'info' }, pino.destination(2)),
});
if (fromCache) markCompleted(softwarePath);
process.stdout.write(`${JSON.stringify({ fromCache })}\n`);
