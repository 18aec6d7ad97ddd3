// Signatures of shadir entries, as slapos.libnetworkcache makes them
// (networkcache.md §8): RSA PKCS#1 v1.5 with SHA-1 over the UTF-8 bytes of the
// metadata JSON string exactly as stored, standard base64 (old clients wrapped
// it at 76 characters: decoded leniently). Certificates are only key holders:
// neither expiry nor chain is checked, as the reference.
import { createPrivateKey, createPublicKey, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';

const BEGIN = '-----BEGIN CERTIFICATE-----';

/**
 * signature-certificate-list: concatenated PEM certificates, split at each
 * BEGIN marker. Certificates that do not load are left out (reported through
 * `onInvalid`), as the reference.
 */
export function parseCertificateList(text: string, onInvalid: (index: number, error: Error) => void = () => undefined): KeyObject[] {
  const keys: KeyObject[] = [];
  text.split(BEGIN).map((chunk) => chunk.trim()).filter((chunk) => chunk !== '').forEach((chunk, index) => {
    try {
      keys.push(new X509Certificate(`${BEGIN}\n${chunk}\n`).publicKey);
    } catch (error) {
      onInvalid(index, error as Error);
    }
  });
  return keys;
}

export function signMetadata(metadata: string, privateKeyPem: string | Buffer): string {
  return sign('sha1', Buffer.from(metadata, 'utf8'), createPrivateKey(privateKeyPem)).toString('base64');
}

/** True when one of the trusted keys verifies the signature; an empty signature or key list is never trusted. */
export function verifyMetadata(metadata: string, signature: string, trusted: readonly KeyObject[]): boolean {
  if (signature.trim() === '' || trusted.length === 0) return false;
  const raw = Buffer.from(signature.replace(/\s+/g, ''), 'base64');
  if (raw.length === 0) return false;
  const data = Buffer.from(metadata, 'utf8');
  return trusted.some((key) => {
    try {
      return verify('sha1', data, key, raw);
    } catch {
      return false;
    }
  });
}

/** Whether the private key's public half is one of the trusted keys (the library refuses to upload otherwise). */
export function keyMatchesList(privateKeyPem: string | Buffer, trusted: readonly KeyObject[]): boolean {
  const publicDer = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'der' });
  return trusted.some((key) => key.export({ type: 'spki', format: 'der' }).equals(publicDer));
}
