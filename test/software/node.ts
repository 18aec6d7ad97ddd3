// A software node for loop tests: a software_root owned by a fresh test user,
// an instance_root, and the loop's default options. Removed at teardown.
import type { ExecutionContext } from 'ava';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { buildoutCommand } from '../../src/software/buildout.js';
import { softwareUser } from '../../src/software/install.js';
import type { SoftwareLoopOptions } from '../../src/software/loop.js';
import { createUser, tempDir, type TestUser } from '../helpers/system.js';

export interface SoftwareNode {
  dir: string;
  user: TestUser;
  options: SoftwareLoopOptions;
}

export function softwareNode(t: ExecutionContext): SoftwareNode {
  const dir = tempDir(t);
  chmodSync(dir, 0o755); // the software user must reach its software_root and our release files
  const user = createUser(t);
  const softwareRoot = path.join(dir, 'software');
  const instanceRoot = path.join(dir, 'instance');
  mkdirSync(softwareRoot);
  mkdirSync(instanceRoot);
  chownSync(softwareRoot, user.uid, user.gid);
  const options: SoftwareLoopOptions = {
    softwareRoot,
    instanceRoot,
    buildoutCommand: buildoutCommand(undefined),
    user: softwareUser(softwareRoot),
    minFreeSpace: 1024 * 1024,
    sharedPartList: [],
    buildTimePartList: [],
    force: false,
    garbageCollect: false,
    log: pino({ level: 'silent' }),
  };
  return { dir, user, options };
}
