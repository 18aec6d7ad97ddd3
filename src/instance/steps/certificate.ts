// The partition's certificate and key from the master, into
// <certificate_repository_path>/<id>.crt/.key (slapgrid.md §4.3 step 4).
import path from 'node:path';
import { SlapNotFoundError } from '../../slap/errors.js';
import { writeIfChanged } from '../../partition/state.js';
import type { Step } from '../step.js';

export const certificateStep: Step = {
  name: 'certificate',
  async run(r) {
    let answer;
    try {
      answer = await r.link.certificate(r.id);
    } catch (error) {
      if (error instanceof SlapNotFoundError) throw new Error(`Partition ${r.id} is not known by SlapOS Master.`);
      throw error;
    }
    const repo = r.settings.certificateRepository;
    if (!repo) return;
    const owner = process.getuid?.() === 0 ? { uid: r.user.uid, gid: r.user.gid } : undefined;
    writeIfChanged(path.join(repo, `${r.id}.crt`), answer.certificate, 0o400, owner);
    writeIfChanged(path.join(repo, `${r.id}.key`), answer.key, 0o400, owner);
  },
};
