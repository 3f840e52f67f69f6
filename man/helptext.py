"""helptext: how the man pages (man/gen_man.py) and their check
(tests/check_man.py) read a program's --help text. An option line is an
indented line whose first column (up to two spaces) starts with '-', e.g.
'  -m, --model FILE       text' or '  --lr-step N, --lr-gamma G text'; its
options are the '-x' / '--name' words of that column. Everything from a line
'Example:' / 'Examples:' on is literal text, not options."""
import re

OPT_LINE = re.compile(r'^(\s{1,12})(-{1,2}[A-Za-z][^\s]*(?: [^\s-][^\s]*)*(?:,? +-{1,2}[A-Za-z][^\s]*(?: [^\s-][^\s]*)*)*)(?:\s{2,}(.*))?$')
OPT_WORD = re.compile(r'(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)')


def is_example(line):
    return re.match(r'^\s*Examples?:\s*$', line) is not None


def parse(text):
    """-> list of blocks: ('text', [lines]) | ('opt', term, [description lines])
    | ('literal', [lines])"""
    blocks = []
    literal = False
    for line in text.splitlines():
        if literal:
            blocks.append(('literal', line))
            continue
        if is_example(line):
            literal = True
            blocks.append(('text', line))
            continue
        m = OPT_LINE.match(line)
        if m:
            blocks.append(('opt', m.group(2).strip(), [m.group(3) or '']))
            continue
        if blocks and blocks[-1][0] == 'opt' and line.startswith(' ' * (len(line) - len(line.lstrip()))) \
                and line.strip() and len(line) - len(line.lstrip()) > 6:
            blocks[-1][2].append(line.strip())  # continuation of a description
            continue
        blocks.append(('text', line))
    return blocks


def options(text):
    """The set of options the help text documents."""
    out = set()
    for b in parse(text):
        if b[0] == 'opt':
            out.update(OPT_WORD.findall(b[1]))
    return out
