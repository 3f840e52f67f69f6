#!/usr/bin/env python3
"""check_man: the man pages document the options the programs' --help texts
document, no more and no less (man/gen_man.py writes the pages from --help
at build time; this catches a --help text it misreads, e.g. an option line
it takes for prose). alignseg(1): one section '.SS "alignseg CMD"' per command of
`alignseg --help`, whose .TP entries name exactly the options of `alignseg
CMD --help`; alignseg-viewer(1): the OPTIONS section and
`alignseg-viewer --help`. A self-test first checks that a page with one
option removed, or one added, is refused.

Usage: check_man.py ALIGNSEG ALIGNSEG-VIEWER|- MANDIR"""
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'man'))
import helptext  # noqa: E402


def run(*cmd):
    env = dict(os.environ, LANG='C.UTF-8', LC_ALL='C.UTF-8', LANGUAGE='C')
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout


def plain(troff):
    return re.sub(r'\\f[BIRP]', '', troff).replace('\\-', '-').replace('\\e', '\\')


def sections(page):
    """{'SH NAME' or 'SS name': [lines]}"""
    out, cur = {}, None
    for line in page.splitlines():
        m = re.match(r'^\.(SH|SS)\s+"?([^"]*)"?\s*$', line)
        if m:
            cur = m.group(1) + ' ' + plain(m.group(2))
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def tp_options(lines):
    opts = set()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == '.TP':
            opts.update(helptext.OPT_WORD.findall(plain(lines[i + 1])))
    return opts


def compare(what, helpopts, manopts):
    errs = []
    for o in sorted(helpopts - manopts):
        errs.append(f'{what}: {o} is in --help but not in the man page')
    for o in sorted(manopts - helpopts):
        errs.append(f'{what}: {o} is in the man page but not in --help')
    return errs


def commands(top):
    out, inside = [], False
    for line in top.splitlines():
        if line.startswith('Commands:'):
            inside = True
            continue
        if inside:
            m = re.match(r'^  ([a-z][a-z-]*)\s', line)
            if not m:
                break
            out.append(m.group(1))
    return out


def check_cli(exe, page):
    errs = []
    secs = sections(page)
    cmds = commands(run(exe, '--help'))
    if len(cmds) < 3:
        return [f'alignseg --help lists {len(cmds)} commands']
    documented = {k[len('SS alignseg '):] for k in secs if k.startswith('SS alignseg ')}
    for c in sorted(set(cmds) - documented):
        errs.append(f'alignseg {c}: no section in alignseg.1')
    for c in sorted(documented - set(cmds)):
        errs.append(f'alignseg {c}: a section in alignseg.1 but not a command')
    for c in cmds:
        if c in documented:
            errs += compare(f'alignseg {c}', helptext.options(run(exe, c, '--help')),
                            tp_options(secs['SS alignseg ' + c]))
    return errs


def check_viewer(exe, page):
    secs = sections(page)
    if 'SH OPTIONS' not in secs:
        return ['alignseg-viewer.1 has no OPTIONS section']
    return compare('alignseg-viewer', helptext.options(run(exe, '--help')), tp_options(secs['SH OPTIONS']))


def self_test(exe, page):
    """a page with an option dropped or added must be refused"""
    lines = page.splitlines()
    sec = next(i for i, l in enumerate(lines) if l.startswith('.SS "alignseg segment"'))
    tp = next(i for i in range(sec, len(lines)) if lines[i] == '.TP' and '\\-\\-model' in lines[i + 1])
    dropped = '\n'.join(lines[:tp] + lines[tp + 3:])
    added = '\n'.join(lines[:tp] + ['.TP', '\\fB\\-\\-no\\-such\\-option\\fR', 'x'] + lines[tp:])
    e1, e2 = check_cli(exe, dropped), check_cli(exe, added)
    ok = any('--model is in --help but not in the man page' in e for e in e1) and \
        any('--no-such-option is in the man page but not in --help' in e for e in e2)
    return [] if ok else ['self-test: a dropped or an added option was not caught: %r %r' % (e1, e2)]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    cli, viewer, mandir = sys.argv[1:]
    page = open(os.path.join(mandir, 'alignseg.1')).read()
    errs = self_test(cli, page) + check_cli(cli, page)
    if viewer != '-':
        errs += check_viewer(viewer, open(os.path.join(mandir, 'alignseg-viewer.1')).read())
    for e in errs:
        print(e)
    if errs:
        print('man pages and --help differ: the --help text has a layout man/helptext.py does '
              'not read (an option line is "  -x, --name ARG   text")')
        sys.exit(1)
    print('man: alignseg.1 (%d commands) and alignseg-viewer.1 document the options of --help'
          % len(commands(run(cli, '--help'))))


if __name__ == '__main__':
    main()
