#!/usr/bin/python3
"""Make the checkpoint test data in tests/data/ckpt/ (dev tool, run by hand).

1. Small .pth / .safetensors files exercising dtypes, strided and offset views,
   key prefixes and nesting, written by Debian's python3-torch (torch.save).
2. expected.tsv: per tensor, its shape, sum and sum of |x| (float64) and first
   value, obtained independently of the C code: the reference .pth files are
   read here with zipfile + a restricted pickle.Unpickler + numpy (no torch);
   the test files' expectations come from the tensors torch saved.
3. A few full tensors as .npy for exact comparison.

Usage: /usr/bin/python3 tests/tools/make_ckpt_expected.py   (from the repo root)
"""
import argparse
import collections
import json
import os
import pickle
import struct
import zipfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data')
OUT = os.path.join(ROOT, 'ckpt')

DTYPES = {'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
          'LongStorage': np.int64, 'IntStorage': np.int32, 'ByteStorage': np.uint8,
          'BoolStorage': np.bool_, 'BFloat16Storage': 'bf16'}


class StorageType:
    def __init__(self, name):
        self.name = name


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    arr = storage
    if len(size) == 0:
        return arr[offset:offset + 1].reshape(())
    itemsize = arr.itemsize
    view = np.lib.stride_tricks.as_strided(arr[offset:], shape=size,
                                           strides=[s * itemsize for s in stride])
    return np.array(view)  # contiguous copy


def rebuild_parameter(t, requires_grad, hooks):
    return t


class Reader(pickle.Unpickler):
    """Independent reader: only the globals torch.save emits, numpy arrays out."""

    def __init__(self, f, zf, prefix):
        super().__init__(f)
        self.zf, self.prefix = zf, prefix

    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return rebuild_tensor_v2
        if (module, name) == ('torch._utils', '_rebuild_parameter'):
            return rebuild_parameter
        if module == 'torch' and name in DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError('refused %s.%s' % (module, name))

    def persistent_load(self, pid):
        kind, st, key, loc, numel = pid
        raw = self.zf.read(self.prefix + 'data/' + key)
        dt = DTYPES[st.name]
        if dt == 'bf16':
            u = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
            return u.view(np.float32)
        return np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder('<'))


def read_pth(path):
    zf = zipfile.ZipFile(path)
    pkl = [n for n in zf.namelist() if n.endswith('data.pkl')][0]
    prefix = pkl[:-len('data.pkl')]
    import io
    return Reader(io.BytesIO(zf.read(pkl)), zf, prefix).load()


def strip(k):
    if k.startswith('module.'):
        k = k[7:]
    for p in ('backbone.', 'model.'):
        if k.startswith(p):
            return k[len(p):]
    return k


def state_dict(root):
    def has_t(d):
        return isinstance(d, dict) and any(isinstance(v, np.ndarray) for v in d.values())
    if has_t(root):
        return root
    for k in ('state_dict', 'model', 'teacher', 'student'):
        if isinstance(root, dict) and has_t(root.get(k)):
            return root[k]
    raise ValueError('no state dict')


def line(kind, rel, name, a):
    a64 = np.asarray(a, dtype=np.float64)
    shape = ','.join(str(s) for s in a.shape) if a.ndim else '-'
    first = a64.reshape(-1)[0] if a64.size else 0.0
    return '%s\t%s\t%s\t%s\t%.17g\t%.17g\t%.9g' % (kind, rel, name, shape, a64.sum(), np.abs(a64).sum(), first)


def walk(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(prefix + ('/' if prefix else '') + str(k), x, out)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            walk('%s[%d]' % (prefix, i), x, out)
    elif isinstance(v, np.ndarray):
        out.append((prefix, v))


def make_test_files():
    import torch
    g = torch.Generator().manual_seed(7)
    files = {}
    base = torch.randn(6, 8, generator=g)
    files['dtypes.pth'] = {
        'f32': torch.randn(3, 5, generator=g),
        'f16': torch.randn(4, 3, generator=g).half(),
        'bf16': torch.randn(7, generator=g).bfloat16(),
        'f64': torch.randn(2, 3, 2, generator=g).double(),
        'i64': torch.arange(-3, 9, dtype=torch.int64).reshape(3, 4),
        'scalar': torch.tensor(2.5),
        'epoch': 4,
    }
    files['views.pth'] = collections.OrderedDict([
        ('transposed', base.t()),                       # strides (1, 8)
        ('offset', base.view(-1)[5:17].view(3, 4)),     # storage offset 5
        ('slice', base[1:5, 1::3]),                     # offset + strides (8, 3)
        ('expanded', base[2, :3].reshape(3, 1).expand(3, 4)),  # stride 0
        ('half_t', base.half().t()[2:]),
    ])
    files['teacher.pth'] = {
        'student': {'module.backbone.cls_token': torch.randn(1, 1, 4, generator=g),
                    'module.head.w': torch.randn(2, 2, generator=g)},
        'teacher': collections.OrderedDict([
            ('backbone.cls_token', torch.randn(1, 1, 4, generator=g)),
            ('head.last_layer.weight', torch.nn.Parameter(torch.randn(3, 4, generator=g))),
            ('backbone.norm.weight', torch.randn(4, generator=g).double()),
            ('n_seen', torch.tensor(17))]),
        'epoch': 100,
        'args': argparse.Namespace(arch='vit_small', lr=0.0005, patch_size=16),
    }
    files['module_model.pth'] = {
        'model': {'module.model.blocks.0.attn.qkv.weight': torch.randn(12, 4, generator=g),
                  'model.norm.bias': torch.randn(4, generator=g),
                  'module.clsQueries.weight': torch.randn(5, 4, generator=g)},
        'optimizer': None, 'epoch': 1,
    }
    for name, obj in files.items():
        torch.save(obj, os.path.join(OUT, name))
    # legacy (pre-1.6) serialisation
    torch.save({'w': torch.randn(2, 2, generator=g)}, os.path.join(OUT, 'legacy.pth'),
               _use_new_zipfile_serialization=False)
    # safetensors, written by hand from its specification
    st = collections.OrderedDict([
        ('backbone.a', np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),
        ('b16', np.array([1.5, -2.25, 65504.0, 6.1e-5], dtype=np.float16)),
        ('c64', np.array([[1e-3, 2.0], [-3.0, 4.5]], dtype=np.float64)),
        ('ids', np.array([1, 2, 3], dtype=np.int64)),
    ])
    bf = (torch.tensor([1.0, -0.5, 3.140625]).bfloat16().view(torch.int16).numpy().astype('<i2').tobytes())
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for k, a in st.items():
        dt = {np.float32: 'F32', np.float16: 'F16', np.float64: 'F64', np.int64: 'I64'}[a.dtype.type]
        b = a.astype(a.dtype.newbyteorder('<')).tobytes()
        header[k] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['bf'] = {'dtype': 'BF16', 'shape': [3], 'data_offsets': [off, off + len(bf)]}
    blobs.append(bf)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, 'sample.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
    exp = []
    for k, a in st.items():
        if a.dtype.kind == 'f':
            exp.append(line('ckpt', 'ckpt/sample.safetensors', strip(k), a.astype(np.float32)))
    exp.append(line('ckpt', 'ckpt/sample.safetensors', 'bf',
                    torch.tensor([1.0, -0.5, 3.140625]).bfloat16().float().numpy()))
    # expectations for the torch-made files, from the tensors themselves
    for name, obj in files.items():
        rel = 'ckpt/' + name
        def tree(prefix, v):
            if isinstance(v, dict):
                for k, x in v.items():
                    tree(prefix + ('/' if prefix else '') + str(k), x)
            elif isinstance(v, torch.Tensor):
                a = v.detach()
                a = a.float() if a.is_floating_point() else a.long()
                exp.append(line('tree', rel, prefix, a.numpy()))
        tree('', obj)
        sd = state_dict(obj_to_np(obj))
        for k, v in sd.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == 'f':
                exp.append(line('ckpt', rel, strip(k), v.astype(np.float32)))
    np.save(os.path.join(OUT, 'views_slice.npy'), files['views.pth']['slice'].contiguous().numpy())
    np.save(os.path.join(OUT, 'views_transposed.npy'), files['views.pth']['transposed'].contiguous().numpy())
    np.save(os.path.join(OUT, 'dtypes_f16.npy'), files['dtypes.pth']['f16'].float().numpy())
    return exp


def obj_to_np(v):
    import torch
    if isinstance(v, dict):
        return type(v)((k, obj_to_np(x)) for k, x in v.items()) if isinstance(v, collections.OrderedDict) \
            else {k: obj_to_np(x) for k, x in v.items()}
    if isinstance(v, torch.Tensor):
        a = v.detach()
        return (a.float() if a.is_floating_point() else a).numpy()
    return v


def main():
    os.makedirs(OUT, exist_ok=True)
    exp = ['# kind\tfile (under tests/data)\tname\tshape\tsum\tsum|x|\tfirst',
           '# made by tests/tools/make_ckpt_expected.py (reference files read without torch)']
    refs = ['reference/infer_tiny/alignseg.pth', 'reference/infer_tiny/dino_backbone.pth',
            'reference/infer_small8/alignseg.pth', 'reference/infer_small8/dino_backbone.pth',
            'reference/train_tiny/alignseg_before.pth', 'reference/train_tiny/alignseg_after.pth',
            'reference/infer_tiny_posinterp/alignseg.pth', 'reference/infer_tiny_posinterp/dino_backbone.pth',
            'reference/backbone_rect/dino_backbone.pth']
    for rel in refs:
        root = read_pth(os.path.join(ROOT, rel))
        for k, v in state_dict(root).items():
            exp.append(line('ckpt', rel, strip(k), v.astype(np.float32)))
        if 'optimizer' in root:
            items = []
            walk('optimizer', root['optimizer'], items)
            for p, a in items[:9]:
                exp.append(line('tree', rel, p, a))
    small = read_pth(os.path.join(ROOT, 'reference/infer_small8/alignseg.pth'))
    np.save(os.path.join(OUT, 'small8_qkv0.npy'),
            state_dict(small)['backbone.blocks.0.attn.qkv.weight'].astype(np.float32))
    exp += make_test_files()
    # plain values pickled by Python itself with every protocol (0-5); the test
    # checks them against this literal
    plain = {'a': [1, 2.5, None, True, False, '\u00e9\u20ac', b'\x00\xff', (1, 2), (), (3,), (4, 5, 6, 7)],
             'big': 2 ** 40, 'neg': -300, 'm': -2 ** 63, 'n': 70000, 'nested': {'x': [[], {}]}, 1: 'one',
             'od': collections.OrderedDict([('k', 1.0), ('j', -0.5)])}
    for proto in range(6):
        with open(os.path.join(OUT, 'plain_p%d.pkl' % proto), 'wb') as f:
            pickle.dump(plain, f, protocol=proto)
    with open(os.path.join(OUT, 'expected.tsv'), 'w') as f:
        f.write('\n'.join(exp) + '\n')


if __name__ == '__main__':
    main()
