// A SLAP client for the node, from slapos.cfg: master_url, and the computer's
// TLS certificate (key_file/cert_file) and the master's CA when set.
import { readFileSync } from 'node:fs';
import type { SlaposConfig } from '../config/load.js';
import { requireKeys } from '../config/load.js';
import { SlapClient } from './client.js';

export function slapClientFromConfig(config: SlaposConfig): SlapClient {
  const slapos = requireKeys(config, 'slapos', ['master_url']);
  const tls: { key?: Buffer; cert?: Buffer; ca?: Buffer } = {};
  if (slapos.key_file) tls.key = readFileSync(slapos.key_file);
  if (slapos.cert_file) tls.cert = readFileSync(slapos.cert_file);
  if (slapos.master_ca_file) tls.ca = readFileSync(slapos.master_ca_file);
  return new SlapClient(slapos.master_url, Object.keys(tls).length > 0 ? { tls } : {});
}
