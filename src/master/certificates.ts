// X.509 issuance by the master's CA. Node 20 can make keys but not
// certificates, so this shells out to openssl (Debian's `openssl` package,
// 3.0+: `req -x509 -CA`): one process per certificate (~25 ms), used only by
// `slapos proxy init-ca` and the first getComputerPartitionCertificate of a
// partition. Keys are EC P-256. Subjects carry the role in OU and the name
// in CN, which access.ts reads back.
import { execa } from '../vendor/execa.js';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type Role = 'computer' | 'partition' | 'user' | 'server';

export interface IssuedCertificate {
  certificate: string;
  key: string;
  fingerprint: string;
}

export interface CaFiles {
  certFile: string;
  keyFile: string;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = 3650;

/** openssl -subj syntax: "/" and "\" inside a value are escaped. */
export function subjectLine(fields: Array<[string, string]>): string {
  return fields.map(([k, v]) => `/${k}=${v.replace(/[\\/]/g, (c) => `\\${c}`)}`).join('');
}

export function subjectOf(role: Role, name: string): string {
  return role === 'server' ? subjectLine([['O', 'SlapOS'], ['CN', name]]) : subjectLine([['O', 'SlapOS'], ['OU', role], ['CN', name]]);
}

/** Extensions of a leaf certificate: clientAuth for roles, serverAuth + SANs for the master. */
export function leafConfig(role: Role, serverNames: string[] = []): string {
  const lines = [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ext', '[dn]', 'CN = unused', '[ext]',
    'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature,keyAgreement',
    `extendedKeyUsage = ${role === 'server' ? 'serverAuth' : 'clientAuth'}`,
    'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid',
  ];
  if (role === 'server' && serverNames.length > 0) {
    lines.push(`subjectAltName = ${serverNames.map((n) => (/^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

async function openssl(args: string[], what: string): Promise<void> {
  try {
    await execa('openssl', args, { stdin: 'ignore', timeout: 30_000 });
  } catch (error) {
    const e = error as { code?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`cannot ${what}: openssl is not installed (apt-get install openssl)`);
    throw new Error(`cannot ${what}: openssl failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ')}`);
  }
}

function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-cert-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** A self-signed CA (key mode 0600). */
export async function createCa(certFile: string, keyFile: string, name = 'SlapOS master CA'): Promise<void> {
  await openssl([
    'req', '-x509', '-new', ...KEY, '-keyout', keyFile, '-out', certFile, '-subj', subjectLine([['O', 'SlapOS'], ['CN', name]]),
    '-days', String(DAYS), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], `create the CA ${certFile}`);
  chmodSync(keyFile, 0o600);
}

/** A certificate signed by the CA for a role and name; returns PEM texts. */
export function issueCertificate(ca: CaFiles, role: Role, name: string, serverNames: string[] = []): Promise<IssuedCertificate> {
  return withTemp(async (dir) => {
    const config = path.join(dir, 'req.cnf');
    const keyFile = path.join(dir, 'leaf.key');
    const certFile = path.join(dir, 'leaf.crt');
    writeFileSync(config, leafConfig(role, serverNames));
    await openssl([
      'req', '-x509', '-new', ...KEY, '-keyout', keyFile, '-out', certFile, '-subj', subjectOf(role, name),
      '-days', String(DAYS), '-CA', ca.certFile, '-CAkey', ca.keyFile, '-config', config,
    ], `issue a ${role} certificate for ${name}`);
    const certificate = readFileSync(certFile, 'utf8');
    return { certificate, key: readFileSync(keyFile, 'utf8'), fingerprint: new X509Certificate(certificate).fingerprint256 };
  });
}
