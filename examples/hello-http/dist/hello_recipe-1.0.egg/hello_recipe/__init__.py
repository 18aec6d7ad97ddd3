"""Buildout recipes of the hello-http example software release.

Standard library only, so the release builds offline with Debian's
zc.buildout. Shipped as an unpacked egg directory found through
`find-links`: buildout copies it into the software's eggs directory and never
writes into the release's own tree (a develop egg would write its egg-info
there).
"""
import json
import os
import shlex

# Options of `template` that are not substitution variables.
_TEMPLATE_OPTIONS = {'recipe', 'input', 'output', 'mode'}


class Template(object):
    """Copies `input` to `output`, replacing @name@ by the part's option `name`.

    `@` placeholders do not clash with buildout's own ${section:option}
    substitutions, which must stay in an instance profile for the instance
    buildout to resolve.
    """

    def __init__(self, buildout, name, options):
        self.name = name
        self.options = options

    def install(self):
        with open(self.options['input']) as f:
            text = f.read()
        for key, value in self.options.items():
            if key not in _TEMPLATE_OPTIONS and not key.startswith('_'):
                text = text.replace('@%s@' % key, value)
        output = self.options['output']
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output, 'w') as f:
            f.write(text)
        os.chmod(output, int(self.options.get('mode', '0644'), 8))
        return [output]

    update = install


# A promise (slapgrid.md §6): exits 0 once the service has bound all its
# addresses (it writes its pid to the ready file then) and is still alive. It
# checks the process, not the network: the node may run promises from another
# network namespace than the service's (as in this project's tests).
# The node runs it right after starting the service, so it waits a little.
_PROMISE = """#!%(python)s
import os, sys, time
ready = %(ready)r
for attempt in range(40):
    try:
        with open(ready) as f:
            pid = int(f.read().strip())
        with open('/proc/%%d/cmdline' %% pid, 'rb') as f:
            if ready.encode() in f.read():  # that pid is still our server
                sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.25)
print('hello-http is not serving: no live process in %%s' %% ready, file=sys.stderr)
sys.exit(1)
"""


class Service(object):
    """Writes the service wrapper <partition>/etc/service/<name>, the
    connection parameters file <partition>/.slapos-connection.json and, with
    the `promise` option, a promise that the service answers."""

    def __init__(self, buildout, name, options):
        self.options = options
        options.setdefault('port', '8080')
        ipv6 = options['ipv6']
        ipv4 = options['ipv4']
        port = options['port']
        options['url'] = 'http://[%s]:%s/' % (ipv6, port) if ipv6 else 'http://%s:%s/' % (ipv4, port)
        options.setdefault('ready-file', os.path.join(os.path.dirname(options['connection-file']), 'var', 'hello-http.ready'))

    def install(self):
        o = self.options
        wrapper = o['wrapper']
        os.makedirs(os.path.dirname(wrapper), exist_ok=True)
        os.makedirs(os.path.dirname(o['ready-file']), exist_ok=True)
        args = [o['python'], o['server'], '--port', o['port'], '--title', o.get('title') or 'hello-http']
        if o['ipv4']:
            args += ['--ipv4', o['ipv4']]
        if o['ipv6']:
            args += ['--ipv6', o['ipv6']]
        if o.get('promise'):
            args += ['--ready-file', o['ready-file']]
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\nexec %s\n' % ' '.join(shlex.quote(a) for a in args))
        os.chmod(wrapper, 0o750)
        connection = {'url': o['url']}
        if o['ipv4']:
            connection['url-ipv4'] = 'http://%s:%s/' % (o['ipv4'], o['port'])
        tmp = o['connection-file'] + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(connection, f, indent=2, sort_keys=True)
            f.write('\n')
        os.rename(tmp, o['connection-file'])
        installed = [wrapper]
        promise = o.get('promise')
        if promise:
            os.makedirs(os.path.dirname(promise), exist_ok=True)
            with open(promise, 'w') as f:
                f.write(_PROMISE % {'python': o['python'], 'ready': o['ready-file']})
            os.chmod(promise, 0o750)
            installed.append(promise)
        return installed

    update = install
