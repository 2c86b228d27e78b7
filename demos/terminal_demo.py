"""`edgebnn demo`: classify real test images in the terminal, draw a few
of them, then accuracy and throughput over the set."""
import sys
import time

import numpy as np

from edgebnn import datasets
from edgebnn.preprocess import load_image

from . import models, terminal
from .models import DemoError

HOW_TO_GET = {
    "mnist": (
        "MNIST: download t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from\n"
        "  https://storage.googleapis.com/cvdf-datasets/mnist/\n"
        "  (the same files as http://yann.lecun.com/exdb/mnist/) into DIR/mnist/ (keep them\n"
        "  gzipped), then run `edgebnn demo --data DIR` or set EDGEBNN_DATA=DIR."),
    "cifar10": (
        "CIFAR-10: download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack\n"
        "  it in DIR (tar xzf cifar-10-python.tar.gz -C DIR, giving DIR/cifar-10-batches-py/),\n"
        "  then run `edgebnn demo --model resnet --data DIR` or set EDGEBNN_DATA=DIR."),
}


def load_test_set(dataset, data, count):
    """(images uint8 [N, H, W, C], labels) or DemoError with download help."""
    try:
        root = datasets.data_root(data)
        if dataset == "mnist":
            x, y = datasets.load_mnist(root, "test")
            x, y = x[:count], y[:count]
        else:
            x, y = datasets.load_cifar10(root, "test", limit=count)
    except datasets.DatasetError as e:
        raise DemoError(f"no {dataset} test set found ({e}).\n{HOW_TO_GET[dataset]}",
                        code=2) from None
    return x, y


def _fit(x, spec):
    """Dataset images resized/converted to the model's input, if they differ."""
    if list(x.shape[1:]) == list(spec.shape):
        return x
    return np.stack([load_image(im, spec) for im in x])


def _show(out, mode, image, lines):
    """The picture with text lines beside its middle rows."""
    pic = terminal.render(image, mode)
    start = max(0, (len(pic) - len(lines)) // 2)
    for i, row in enumerate(pic):
        j = i - start
        print(row + ("   " + lines[j] if 0 <= j < len(lines) else ""), file=out)
    for extra in lines[len(pic) - start:]:
        print(" " * image.shape[1] + "   " + extra, file=out)


def run(args, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    model = models.load(args.model, args.threads)
    dataset = args.dataset or models.dataset_of(model)
    raw, truth = load_test_set(dataset, args.data, args.count)
    x = _fit(raw, model.input_spec)
    pre = model.input_spec.preprocess or {}
    if dataset == "mnist" and pre.get("invert"):
        # the file describes raw images as dark ink on light paper and inverts
        # them; MNIST files hold light on dark already, i.e. inverted
        x = 255 - x
    names = model.labels or [str(i) for i in range(int(np.max(truth)) + 1)]
    if len(names) <= int(np.max(truth)):
        raise DemoError(f"the model has {len(names)} classes but {dataset} has labels up to "
                        f"{int(np.max(truth))}: is this the right model for {dataset}?")
    mode = terminal.colour_mode(out, args.ascii)
    print(f"model {model.graph.name} ({models.resolve(args.model)}), "
          f"{models.executor_note(model)}, {model.threads} thread(s)", file=out)
    print(f"{dataset} test set: {len(x)} images\n", file=out)

    shown = np.random.default_rng(args.seed).permutation(len(x))[:args.show]
    model.run(x[:1])                   # first call allocates; keep it out of the timings
    for i in shown:
        t = time.perf_counter()
        p = model.probabilities(x[i:i + 1])[0]
        ms = (time.perf_counter() - t) * 1e3
        k = int(np.argmax(p))
        ok = k == truth[i]
        mark = ("\u2713 right" if mode != "ascii" else "right") if ok else \
            ("\u2717 wrong" if mode != "ascii" else "WRONG")
        _show(out, mode, raw[i], [f"image #{i}",
                                   f"prediction: {names[k]} ({p[k] * 100:.1f}%)",
                                   f"truth:      {names[truth[i]]}   {mark}",
                                   f"latency:    {ms:.2f} ms"])
        print(file=out)

    predicted = np.empty(len(x), np.int64)
    from tqdm import tqdm
    start = time.perf_counter()
    with tqdm(total=len(x), unit="img", file=err, disable=None, desc="classifying") as bar:
        for s in range(0, len(x), args.batch):
            predicted[s:s + args.batch] = model.predict(x[s:s + args.batch])
            bar.update(len(x[s:s + args.batch]))
    dt = time.perf_counter() - start
    correct = int(np.sum(predicted == truth))
    print(f"accuracy: {correct / len(x):.4f} ({correct}/{len(x)}) on {dataset} test", file=out)
    print(f"throughput: {len(x) / dt:.0f} images/s ({len(x)} images in {dt:.2f} s, "
          f"batch {args.batch}, {model.threads} thread(s))", file=out)
    return 0
