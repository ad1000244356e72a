"""CLAP-shaped training step in PyTorch (CPU): the comparison point for the engine benchmark.

Set-up (Debian packages): apt-get install -y python3-torch libopenblas0-pthread
Run with Debian's interpreter and one BLAS thread (two threads are pathologically slow on this
machine kind):  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 torch_step.py bench 1 30
Measure it in the same run as the TypeScript benchmark and compare the ratio: absolute times drift.
Each step's process CPU time is reported beside its wall time: on a machine shared with other
jobs, CPU time is what time-slicing does not inflate.

Usage:
  python3 torch_step.py dump  OUT_PREFIX            # write deterministic params+inputs
  python3 torch_step.py check OUT_PREFIX            # loss/grad-norms with dropout off and fixed eps
  python3 torch_step.py bench [threads] [steps]     # time training steps (dropout on, fresh eps each step)
  python3 torch_step.py grid STEPS C,T,D [C,T,D ...] # one JSON line per shape: the scaling grid of bench/scaling.ts
Shapes: C=100 classes, B=32 images, D=512, M=20 MC samples (the grid changes C, M and D; the
feed-forward width stays 2048, as nn.TransformerDecoderLayer's default that the reference keeps).

This is the project's copy of the comparison script (bench/torchReference.ts runs it), so a fresh
clone can measure the PyTorch twin without anything outside the repository.
"""
import sys, time, json, statistics
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

C, B, D, M = 100, 32, 512, 20

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.vga = nn.TransformerDecoderLayer(d_model=D, nhead=1, dim_feedforward=2048, dropout=0.1,
                                              activation='gelu', batch_first=True)  # post-norm (norm_first=False)
        self.mu = nn.Linear(D, D)
        self.sigma = nn.Linear(D, D)

    def forward(self, text, img, labels, eps=None):
        # text: C x D (frozen), img: B x D (frozen)
        vga = self.vga(text.unsqueeze(0), img.unsqueeze(0)).squeeze(0)   # C x D
        t = text + vga
        mu = self.mu(t)
        sigma = F.softplus(self.sigma(t)) * 0.999 + 0.001
        if eps is None:
            eps = torch.randn(M, C, D)
        feats = t.unsqueeze(0) + mu.unsqueeze(0) + sigma.unsqueeze(0) * eps   # M x C x D  (text + rsample)
        logits = 100.0 * torch.einsum('bd,mcd->mbc', img, feats)               # M x B x C
        ce = F.cross_entropy(logits.reshape(M * B, C), labels.repeat(M))
        kl = (torch.log(1.0 / sigma) + (sigma ** 2 + mu ** 2) / 2 - 0.5).sum(-1).mean() * 0.001  # mean over classes, sum over D
        return ce + kl, ce, kl

def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    text = F.normalize(torch.randn(C, D, generator=g), dim=-1)
    img = F.normalize(torch.randn(B, D, generator=g), dim=-1)
    labels = torch.randint(0, C, (B,), generator=g)
    eps = torch.randn(M, C, D, generator=g)
    return text, img, labels, eps

def dump(prefix):
    torch.manual_seed(0)
    model = Model()
    text, img, labels, eps = make_inputs()
    arrays = {k: v.detach() for k, v in model.state_dict().items()}
    arrays.update({'text': text, 'img': img, 'labels': labels.float(), 'eps': eps})
    manifest, off = [], 0
    with open(prefix + '.bin', 'wb') as f:
        for k, v in arrays.items():
            a = v.numpy().astype(np.float32)
            f.write(a.tobytes())
            manifest.append({'name': k, 'shape': list(a.shape), 'offset': off})
            off += a.size
    json.dump(manifest, open(prefix + '.json', 'w'), indent=0)
    torch.save(model.state_dict(), prefix + '.pt')
    print('wrote', prefix, len(manifest), 'arrays', off, 'floats')

def check(prefix):
    torch.manual_seed(0)
    model = Model()
    model.load_state_dict(torch.load(prefix + '.pt'))
    model.eval()  # dropout off
    text, img, labels, eps = make_inputs()
    loss, ce, kl = model(text, img, labels, eps)
    loss.backward()
    out = {'loss': loss.item(), 'ce': ce.item(), 'kl': kl.item()}
    for n, p in model.named_parameters():
        out['grad_norm/' + n] = p.grad.norm().item()
    print(json.dumps(out, indent=1))

def set_shape(c, m, d):
    global C, M, D
    C, M, D = c, m, d

def time_steps(steps, warmup=5):
    """Median, min and max ms of a training step at the current shape, and the last loss."""
    torch.manual_seed(0)
    model = Model(); model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    text, img, labels, _ = make_inputs()
    def step():
        opt.zero_grad(set_to_none=True)
        loss, _, _ = model(text, img, labels)
        loss.backward()
        opt.step()
        return loss.item()
    for _ in range(warmup):
        step()
    ts, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        l = step()
        ts.append((time.perf_counter() - t0) * 1e3); cpu.append((time.process_time() - c0) * 1e3)
    ts.sort()
    return statistics.median(ts), ts[0], ts[-1], l, statistics.median(cpu)

def grid(steps, shapes):
    torch.set_num_threads(1)
    for spec in shapes:
        c, m, d = (int(x) for x in spec.split(','))
        set_shape(c, m, d)
        med, lo, hi, l, cpu = time_steps(steps, warmup=3)
        print(json.dumps({'torch': torch.__version__, 'classes': c, 'samples': m, 'dim': d,
                          'medianMs': med, 'minMs': lo, 'maxMs': hi, 'cpuMedianMs': cpu, 'loss': l}), flush=True)

def bench(threads=2, steps=30):
    torch.set_num_threads(threads)
    med, lo, hi, l, cpu = time_steps(steps)
    print(f'torch {torch.__version__} threads={torch.get_num_threads()} step: median {med:.1f} ms '
          f'(min {lo:.1f}, max {hi:.1f}, n={steps}) cpu {cpu:.1f} ms loss={l:.4f}')
    # matmul throughput, same shapes as the tfjs bench
    for (m, k, n) in [(512, 512, 512), (100, 512, 2048), (32, 512, 512), (100, 512, 512)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3): a @ b
        tt = []
        for _ in range(15):
            t0 = time.perf_counter(); a @ b; tt.append(time.perf_counter() - t0)
        med = statistics.median(tt)
        print(f'torch matmul {m}x{k}x{n}: median {med*1e3:.2f} ms = {2*m*k*n/med/1e9:.2f} GFLOP/s')

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'dump': dump(sys.argv[2])
    elif cmd == 'check': check(sys.argv[2])
    elif cmd == 'grid': grid(int(sys.argv[2]), sys.argv[3:])
    elif cmd == 'bench': bench(int(sys.argv[2]) if len(sys.argv) > 2 else 2, int(sys.argv[3]) if len(sys.argv) > 3 else 30)
