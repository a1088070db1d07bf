"""GPU benchmark of the kernels: the fused Gaunt-grid convolution beside e3nn and cuEquivariance,
and end-to-end facet-s steps with the torch and the Triton backends.

All in one process on one CUDA device; prints markdown tables headed by the GPU's name.

    python scripts/bench_kernels.py                      # full run on a GPU
    python scripts/bench_kernels.py --dry-run            # tiny sizes, torch backend, CPU is fine

Convolution rows: the same node features ``(N, (L+1)^2, C)`` (e3nn: the same numbers in its flat
irreps layout, ``C x 0e + C x 1o + ...``), the same edges and edge vectors, the output in the
same layout. "gaunt-grid" is our path: to the S2 grid at the nodes, the fused convolution,
back at the nodes (Gaunt paths, l1+l2+l3 even, with L+1 radial weights per channel). "cg" is our
channelwise CG kernel, and e3nn / cuEquivariance run the channelwise "uvu" tensor product with
every even path weighted per edge, then a scatter. Times are medians after warm-up;
memory is the peak ``torch.cuda.max_memory_allocated`` above the inputs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch
from mlip.kernels.cg_conv import cg_conv
from mlip.kernels.gaunt_conv import gaunt_grid_conv


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, device, repeats, warmup=2):
    """Median seconds and peak extra memory (bytes; 0 on CPU) of ``fn()``."""
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() - base if device.type == "cuda" else 0
    return statistics.median(times), peak


# --- problem setup --------------------------------------------------------------------------

def even_paths(lmax):
    return [(l1, l2, l3) for l1 in range(lmax + 1) for l2 in range(lmax + 1)
            for l3 in range(abs(l1 - l2), min(l1 + l2, lmax) + 1) if (l1 + l2 + l3) % 2 == 0]


def cg_table(lmax, device):
    from e3nn import o3

    cols = [[], [], [], [], []]
    for p, (l1, l2, l3) in enumerate(even_paths(lmax)):
        w = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
        for i, j, k in (w.abs() > 1e-12).nonzero().tolist():
            for col, v in zip(cols, (p, l1 * l1 + i, l2 * l2 + j, l3 * l3 + k, w[i, j, k].item())):
                col.append(v)
    return [torch.tensor(c, device=device) for c in cols[:4]] + [
        torch.tensor(cols[4], dtype=torch.float64, device=device)]


def s2_grid(lmax, device, dtype):
    """Gauss-Legendre x uniform grid exact for degree 3 lmax, with to/from matrices."""
    import numpy as np
    from e3nn import o3

    degree = 3 * lmax
    x, w = np.polynomial.legendre.leggauss(degree // 2 + 1)
    phi = np.arange(degree + 1) * 2 * np.pi / (degree + 1)
    ct, ph = np.meshgrid(x, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    dirs = torch.tensor(np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3))
    weights = torch.tensor((w[:, None] * np.full(degree + 1, 2 * np.pi / (degree + 1))).reshape(-1))
    y = o3.spherical_harmonics(list(range(lmax + 1)), dirs, True, normalization="integral")
    to = y.to(device, dtype)
    return dirs.to(device, dtype), to, (y * weights[:, None]).T.contiguous().to(device, dtype)


def graph(n_nodes, n_edges, device, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    receiver = torch.sort(torch.randint(0, n_nodes, (n_edges,), generator=gen)).values
    sender = torch.randint(0, n_nodes, (n_edges,), generator=gen)
    vec = torch.randn(n_edges, 3, generator=gen, dtype=dtype)
    return sender.to(device), receiver.to(device), vec.to(device)


# --- convolution contenders -----------------------------------------------------------------

def gaunt_runner(x, vec, sender, receiver, lmax, backend):
    dirs, to, frm = s2_grid(lmax, x.device, x.dtype)
    d = torch.nn.functional.normalize(vec, dim=-1)
    radial = torch.randn(vec.shape[0], lmax + 1, x.shape[-1], device=x.device, dtype=x.dtype)

    def run(x=x, radial=radial):
        xg = torch.einsum("gk,nkc->ngc", to, x)
        out = gaunt_grid_conv(xg, d, radial, dirs, sender, receiver, backend=backend)
        return torch.einsum("kg,ngc->nkc", frm, out)

    return run, [x, radial]


def cg_runner(x, vec, sender, receiver, lmax, backend):
    from e3nn import o3

    table = cg_table(lmax, x.device)
    sh = o3.spherical_harmonics(list(range(lmax + 1)), vec, True, normalization="integral")
    w = torch.randn(vec.shape[0], len(even_paths(lmax)), x.shape[-1], device=x.device,
                    dtype=x.dtype)
    K = (lmax + 1) ** 2

    def run(x=x, w=w):
        return cg_conv(x, sh, w, table, sender, receiver, K, backend=backend)

    return run, [x, w]


def irreps_of(lmax, channels):
    return "+".join(f"{channels}x{l}{'eo'[l % 2]}" for l in range(lmax + 1))


def to_e3nn_layout(x):
    """(N, K, C) spherical-channel -> e3nn's flat (N, sum_l C (2l+1)) with mul before m."""
    lmax = math.isqrt(x.shape[1]) - 1
    return torch.cat([x[:, l * l:(l + 1) ** 2].transpose(1, 2).reshape(x.shape[0], -1)
                      for l in range(lmax + 1)], dim=1)


def e3nn_runner(x, vec, sender, receiver, lmax, backend):
    from e3nn import o3

    C = x.shape[-1]
    irreps = o3.Irreps(irreps_of(lmax, C))
    sh_irreps = o3.Irreps.spherical_harmonics(lmax)
    instr = [(i1, i2, i3, "uvu", True) for i1, (_, ir1) in enumerate(irreps)
             for i2, (_, ir2) in enumerate(sh_irreps) for i3, (_, ir3) in enumerate(irreps)
             if ir3 in ir1 * ir2]
    tp = o3.TensorProduct(irreps, sh_irreps, irreps, instr, shared_weights=False,
                          internal_weights=False).to(x.device, x.dtype)
    sh = o3.spherical_harmonics(sh_irreps, vec, True, normalization="integral")
    w = torch.randn(vec.shape[0], tp.weight_numel, device=x.device, dtype=x.dtype)
    xf = to_e3nn_layout(x).detach()  # its own layout, as an input

    def run(xf=xf, w=w):
        msg = tp(xf[sender], sh, w)
        return torch.zeros_like(xf).index_add(0, receiver, msg)

    return run, [xf, w]


def cueq_runner(x, vec, sender, receiver, lmax, backend):
    import cuequivariance as cue
    import cuequivariance_torch as cuet
    from e3nn import o3

    C = x.shape[-1]
    irreps = cue.Irreps("O3", irreps_of(lmax, C))
    sh_irreps = cue.Irreps("O3", "+".join(f"1x{l}{'eo'[l % 2]}" for l in range(lmax + 1)))
    tp = cuet.ChannelWiseTensorProduct(irreps, sh_irreps, irreps, layout=cue.mul_ir,
                                       shared_weights=False, internal_weights=False,
                                       device=x.device, dtype=x.dtype)
    sh = o3.spherical_harmonics(list(range(lmax + 1)), vec, True, normalization="integral")
    w = torch.randn(vec.shape[0], tp.weight_numel, device=x.device, dtype=x.dtype)
    xf = to_e3nn_layout(x).detach()  # its own layout, as an input

    def run(xf=xf, w=w):
        msg = tp(xf[sender], sh, w)
        return torch.zeros(xf.shape[0], msg.shape[1], device=xf.device,
                           dtype=xf.dtype).index_add(0, receiver, msg)

    return run, [xf, w]


CONTENDERS = {"gaunt-grid": gaunt_runner, "cg": cg_runner, "e3nn": e3nn_runner,
              "cuequivariance": cueq_runner}


def bench_conv(args, device, dtype, backend):
    print("\n### Convolution (median ms; peak extra MiB for forward+backward)\n")
    print(f"N={args.nodes} nodes, E={args.edges} edges, {args.dtype}, our backend {backend}\n")
    print("| contender | l_max | C | forward (ms) | fwd+bwd (ms) | peak (MiB) |")
    print("|---|---|---|---|---|---|")
    sender, receiver, vec = graph(args.nodes, args.edges, device, dtype)
    for lmax in args.lmax:
        for C in args.channels:
            for name in args.contenders:
                x = torch.randn(args.nodes, (lmax + 1) ** 2, C, device=device, dtype=dtype)
                try:
                    run, leaves = CONTENDERS[name](x, vec, sender, receiver, lmax, backend)
                    leaves = [t.requires_grad_() for t in leaves]

                    def fwd(run=run):
                        with torch.no_grad():
                            run()

                    def fwd_bwd(run=run, leaves=leaves):
                        torch.autograd.grad(run().square().sum(), leaves)

                    tf, _ = measure(fwd, device, args.repeats)
                    tb, peak = measure(fwd_bwd, device, args.repeats)
                    print(f"| {name} | {lmax} | {C} | {tf * 1e3:.2f} | {tb * 1e3:.2f} | "
                          f"{peak / 2**20:.0f} |", flush=True)
                except Exception as exc:  # a contender that is missing or fails is reported
                    print(f"| {name} | {lmax} | {C} | skipped: {type(exc).__name__}: "
                          f"{str(exc)[:80]} | | |", flush=True)


# --- end to end -------------------------------------------------------------------------------

def bench_model(args, device, dtype_name):
    from ase.build import bulk

    import mlip
    from mlip.data import from_ase

    print(f"\n### facet-s end to end ({args.atoms}-atom fcc Cu, {dtype_name})\n")
    print("| backend | MD step: energy+forces (ms) | peak (MiB) | training step (ms) | "
          "peak (MiB) |")
    print("|---|---|---|---|---|")
    reps = max(1, round((args.atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (reps, reps, reps)
    atoms.rattle(0.02, seed=0)
    g = {k: v.to(device) for k, v in from_ase(atoms, 5.0).items()}
    backends = ["torch"] if args.dry_run else ["torch", "triton"]
    for backend in backends:
        # The models' modules dispatch with backend="auto": triton on CUDA unless forced.
        os.environ["MLIP_KERNELS"] = "torch" if backend == "torch" else ""
        torch.manual_seed(0)
        model = mlip.build_model("facet-s", elements=[29], dtype=dtype_name).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        forces_ref = torch.zeros_like(g["positions"])

        def md_step(model=model):
            out = model(g, compute_forces=True, compute_stress=False)
            return out["forces"].detach()

        def train_step(model=model, opt=opt, forces_ref=forces_ref):
            out = model(g, compute_forces=True, compute_stress=False)
            loss = out["energy"].square().mean() + (out["forces"] - forces_ref).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        try:
            t_md, m_md = measure(md_step, device, args.repeats)
            t_tr, m_tr = measure(train_step, device, args.repeats)
            print(f"| {backend} | {t_md * 1e3:.1f} | {m_md / 2**20:.0f} | {t_tr * 1e3:.1f} | "
                  f"{m_tr / 2**20:.0f} |", flush=True)
        except Exception as exc:
            print(f"| {backend} | failed: {type(exc).__name__}: {str(exc)[:80]} | | | |")
    os.environ.pop("MLIP_KERNELS", None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true",
                   help="tiny sizes with the torch backend; runs on CPU, checks the script")
    p.add_argument("--lmax", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    p.add_argument("--channels", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--edges", type=int, default=40000)
    p.add_argument("--atoms", type=int, default=10000)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    p.add_argument("--skip-model", action="store_true")
    args = p.parse_args(argv)
    if args.dry_run:
        args.lmax, args.channels, args.nodes, args.edges = [1, 2], [4], 8, 40
        args.atoms, args.repeats = 32, 1
        args.contenders = [c for c in args.contenders if c != "cuequivariance"]
        device, backend = torch.device("cpu"), "torch"
    else:
        if not torch.cuda.is_available():
            sys.exit("bench_kernels.py needs a CUDA device (or --dry-run)")
        device, backend = torch.device("cuda"), "triton"
    dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run)"
    print(f"## Kernels on {name}\n\ntorch {torch.__version__}")
    bench_conv(args, device, dtype, backend)
    if not args.skip_model:
        bench_model(args, device, args.dtype)


if __name__ == "__main__":
    main()
