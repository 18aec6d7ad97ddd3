// Publishing the connection parameters the instance wrote to
// .slapos-connection.json (ours; the reference leaves this to recipes). Only
// what differs from the master's copy is posted.
import { SlapNotFoundError } from '../../slap/errors.js';
import { readTextNoFollow } from '../../partition/state.js';
import { parseConnectionFile, sameParameters } from '../connection.js';
import type { Step } from '../step.js';

export const connectionStep: Step = {
  name: 'connection',
  async run(r) {
    const text = readTextNoFollow(r.files.connection);
    if (text === undefined) {
      r.log.debug({ path: r.files.connection }, 'no connection parameters to publish');
      return;
    }
    const { own, slaves } = parseConnectionFile(text, r.files.connection);
    if (!sameParameters(r.partition.connectionParameters, own)) {
      r.log.info({ partition: r.id, keys: Object.keys(own) }, 'Publishing connection parameters');
      await r.link.connection(r.id, own);
    }
    for (const [reference, params] of Object.entries(slaves)) {
      try {
        await r.link.connection(r.id, params, reference);
      } catch (error) {
        // A slave destroyed meanwhile is not this partition's failure.
        if (error instanceof SlapNotFoundError) r.log.warn({ code: 'SLAVE_UNKNOWN', partition: r.id, slave: reference }, 'slave unknown to the master; its parameters are not published');
        else throw error;
      }
    }
  },
};
