"""The PyTorch peers of the chapter's bench: the chapter's own loop, and ``torch.func`` for
many models at once. PyTorch is imported only when they run."""

from __future__ import annotations

import numpy as np

#: The chapter's learning rate and momentum (section 5.5.2).
LR, BETA = 0.01, 0.8


def torch_device(torch) -> str:
    """PyTorch's device: its GPU where it has one (as JAX uses its own), else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_net(torch, params):
    import torch.nn.functional as F

    class Net(torch.nn.Module):  # the chapter's Net
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(1, 20)
            self.predict = torch.nn.Linear(20, 1)

        def forward(self, x):
            return self.predict(F.relu(self.hidden(x)))

    net = Net()
    with torch.no_grad():
        for name in ("hidden", "predict"):
            layer = getattr(net, name)
            layer.weight.copy_(torch.tensor(np.asarray(params[name]["kernel"]).T))
            layer.bias.copy_(torch.tensor(np.asarray(params[name]["bias"])))
    return net.to(torch_device(torch))


def torch_loop(params, order, data, lr=LR, beta=BETA, nesterov=False) -> np.ndarray:
    """The chapter's section 5.5.2 program on jaxmom's batches: its step losses, ``[steps]``.

    ``DataLoader`` over a ``TensorDataset`` (fed ``order``'s batches, so the shuffle is
    jaxmom's), ``Net``, ``MSELoss``, ``torch.optim.SGD(momentum=beta)``, ``loss.item()``.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    net = _torch_net(torch, params)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=beta, nesterov=nesterov)
    loss_func = torch.nn.MSELoss()
    x, y = (torch.tensor(np.asarray(a), device=torch_device(torch)) for a in data)
    idx, mask = np.asarray(order.indices), np.asarray(order.mask)
    batches = [i[m].tolist() for i, m in zip(idx, mask, strict=True)]
    loader = DataLoader(TensorDataset(x, y), batch_sampler=batches)
    losses = []
    for b_x, b_y in loader:
        loss = loss_func(net(b_x), b_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def torch_func_vmap(params, order, data, betas, lr=LR) -> np.ndarray:
    """``len(betas)`` models at once with ``torch.func``: step losses ``[models, steps]``.

    Every model starts from ``params`` (as runs of one seed do in :func:`jaxmom.sweep`) and
    has its own beta; the update is ``v <- g + beta v; p <- p - lr v`` (``torch.optim.SGD``'s).
    """
    import torch
    from torch.func import functional_call, grad_and_value, vmap

    base = _torch_net(torch, params)
    m = len(betas)
    # what torch.func.stack_module_state returns for m copies of ``base``, without m modules
    stacked = {k: v.detach().expand(m, *v.shape).clone() for k, v in base.named_parameters()}
    base = base.to("meta")
    dev = torch_device(torch)
    beta = torch.tensor(np.asarray(betas, np.float32), device=dev)

    def loss_fn(p, xb, yb):
        return torch.nn.functional.mse_loss(functional_call(base, p, (xb,)), yb)

    step = vmap(grad_and_value(loss_fn), in_dims=(0, None, None))
    velocity = {k: torch.zeros_like(v) for k, v in stacked.items()}
    b = {k: beta.view(m, *([1] * (v.ndim - 1))) for k, v in stacked.items()}
    x, y = (torch.tensor(np.asarray(a), device=dev) for a in data)
    idx, mask = np.asarray(order.indices), np.asarray(order.mask)
    batches = [torch.tensor(i[k], device=dev) for i, k in zip(idx, mask, strict=True)]
    losses = []
    with torch.no_grad():
        for bi in batches:
            grads, loss = step(stacked, x[bi], y[bi])
            for k, p in stacked.items():
                velocity[k].mul_(b[k]).add_(grads[k])
                p.sub_(lr * velocity[k])
            losses.append(loss)
    return torch.stack(losses, dim=1).cpu().numpy()


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return f"{torch.__version__} ({torch_device(torch)})"
