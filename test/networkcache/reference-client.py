# A STAND-IN for slapos.libnetworkcache and the reference node's use of it
# (networkcache.md §4, §5, §7, §8), written for reference-protocol.test.ts:
# the same requests, headers, JSON and archive format with Python's standard
# library; signatures with `openssl dgst -sha1` (RSA PKCS#1 v1.5 over SHA-1,
# base64 on one line, as the library's crypto.sign/verify). Not the library.
#
#   upload  <base> <release dir> <url> <software_root> <key file> <multiarch> <os json>
#   install <base> <md5> <certificate file> <multiarch> <target dir>
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from urllib.parse import urlsplit


def request(method, url, body=None, headers=None):
    parsed = urlsplit(url)
    headers = dict(headers or {})
    headers['Connection'] = 'close'
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request(method, parsed.path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def sign(key_file, data):
    signature = subprocess.check_output(['openssl', 'dgst', '-sha1', '-sign', key_file], input=data)
    return base64.b64encode(signature).decode()


def verify(certificate_file, data, signature):
    with tempfile.TemporaryDirectory() as tmp:
        pubkey = os.path.join(tmp, 'pub.pem')
        sigfile = os.path.join(tmp, 'sig')
        subprocess.check_call(['openssl', 'x509', '-in', certificate_file, '-pubkey', '-noout', '-out', pubkey])
        with open(sigfile, 'wb') as f:
            f.write(base64.b64decode(signature.encode()))
        return subprocess.run(['openssl', 'dgst', '-sha1', '-verify', pubkey, '-signature', sigfile],
                              input=data, stdout=subprocess.DEVNULL).returncode == 0


def upload(base, release, url, software_root, key_file, multiarch, os_json):
    cache, shadir = base + '/shacache', base + '/shadir'
    parent, name = os.path.split(release)
    with tempfile.TemporaryFile(dir=parent) as f:
        with tarfile.open(fileobj=f, mode='w:gz') as tar:
            tar.add(release, arcname=name)
        f.seek(0)
        sha512 = hashlib.sha512(f.read()).hexdigest()
        status, _ = request('GET', cache.rstrip('/') + '/' + sha512)
        existed = 200 <= status < 300
        if not existed:
            size = f.tell()
            f.seek(0)
            status, data = request('POST', cache.rstrip('/'), f, {'Content-Length': str(size), 'Content-Type': 'application/octet-stream'})
            if status != 201 or data != sha512.encode():
                sys.exit('shacache POST: %s %r' % (status, data))
    kw = {'software_url': url, 'software_root': software_root, 'multiarch': multiarch, 'os': json.loads(os_json)}
    metadata = json.dumps(dict(sha512=sha512, **kw))
    entry = json.dumps([metadata, sign(key_file, metadata.encode())])
    status, data = request('PUT', shadir.rstrip('/') + '/' + name, entry, {'Content-Type': 'application/json'})
    if status != 201:
        sys.exit('shadir PUT: %s %r' % (status, data))
    print(json.dumps({'sha512': sha512, 'existed': existed, 'metadata': metadata}))


def install(base, key, certificate_file, multiarch, target):
    status, data = request('GET', base + '/shadir/' + key)
    if not 200 <= status < 300:
        sys.exit('shadir GET: %s' % status)
    for metadata, signature in json.loads(data.decode()):
        if not verify(certificate_file, metadata.encode(), signature):
            continue
        information = json.loads(metadata)
        if information.get('multiarch') != multiarch:
            continue
        status, blob = request('GET', base + '/shacache/' + information['sha512'])
        if not 200 <= status < 300 or hashlib.sha512(blob).hexdigest() != information['sha512']:
            sys.exit('shacache GET: %s, or invalid checksum' % status)
        with tempfile.TemporaryFile(dir=target) as f:
            f.write(blob)
            f.seek(0)
            with tarfile.open(fileobj=f, mode='r:gz') as tar:
                members = tar.getnames()
                tar.extractall(path=target)
        print(json.dumps({'metadata': information, 'members': members}, sort_keys=False))
        return
    sys.exit('no trusted, compatible entry')


if __name__ == '__main__':
    command, args = sys.argv[1], sys.argv[2:]
    {'upload': upload, 'install': install}[command](*args)
