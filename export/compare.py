"""Full-test-set comparison of a trained model and its exported file: the
accuracy each gives on every test image, every image where their top-1
differs, and for those images the equivalence check's explanation (which
binarized values flip, and whether each flip lies within float32 rounding
of the sign threshold in Keras).

    python -m edgebnn_export.compare SOURCE MODEL.ebnn --dataset cifar10
        [--data DIR] [--checkpoint best|last|PREFIX]

SOURCE is what `edgebnn export` takes (a run directory, a checkpoint, a
Keras file). The file runs as a user runs it (uint8 pixels through its
stored preprocessing, `Model.predict`); Keras gets the same pixels through
edgebnn.preprocess.normalize, the exporter's path."""
import argparse
import sys

import numpy as np


def compare(source, model_path, dataset, data=None, checkpoint=None, batch=500, log=print):
    """-> (keras correct, file correct, indices where the top-1 differs)."""
    import edgebnn
    from edgebnn import datasets
    from edgebnn.preprocess import normalize

    from .convert import convert
    from .equivalence import Checker
    from .exporter import load_source

    keras_model, _ = load_source(source, checkpoint)
    model = edgebnn.load(model_path)
    pixels, labels = datasets.LOADERS[dataset](data, "test")
    x = normalize(pixels, model.input_spec)
    kp, fp = [], []
    for i in range(0, len(x), batch):
        kp.append(np.argmax(np.asarray(keras_model(x[i:i + batch], training=False)), axis=1))
        fp.append(model.predict(pixels[i:i + batch]))
    kp, fp = np.concatenate(kp), np.concatenate(fp)
    kc, fc = int(np.sum(kp == labels)), int(np.sum(fp == labels))
    differ = np.flatnonzero(kp != fp)
    log(f"{dataset} test, {len(x)} images: Keras {kc} correct ({kc / len(x):.2%}), "
        f"{model_path} {fc} correct ({fc / len(x):.2%}); top-1 differs on {len(differ)}")
    if len(differ):
        conversion = convert(keras_model, preprocess=model.input_spec.preprocess)
        report = Checker(keras_model, conversion).run(x[differ], labels[differ], "real")
        for j, i in enumerate(differ):
            flips = [f for f in report.free_flips if f.sample == j]
            log(f"  image {i}: label {model.labels[labels[i]]}, Keras "
                f"{model.labels[kp[i]]}, file {model.labels[fp[i]]}; binarized values "
                f"that differ: {len(flips)}")
            for f in flips[:5]:
                log(f"    {f}")
            if len(flips) > 5:
                log(f"    ... and {len(flips) - 5} more, downstream of the first")
        log(f"every op checked on these images: "
            f"{'PASSED' if report.first_failure is None else report.failure_message()}")
    return kc, fc, differ


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m edgebnn_export.compare",
                                description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("model")
    p.add_argument("--dataset", choices=("mnist", "cifar10"), required=True)
    p.add_argument("--data", default=None, help="datasets folder")
    p.add_argument("--checkpoint", default=None, help="best (default), last or a prefix")
    args = p.parse_args(argv)
    from edgebnn import ModelError
    from edgebnn.datasets import DatasetError
    from .exporter import ExportError
    try:
        compare(args.source, args.model, args.dataset, args.data, args.checkpoint)
    except (DatasetError, ModelError, ExportError, OSError) as e:
        p.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
