"""Warm start for edgebnn-train (--init-from): begin a run from another
trained network's weights, layer by layer by name.

This is the two-step recipe of binarized-network papers (Bi-Real Net,
Real-to-Binary, ReActNet): train an easier network first (float, or binary
weights with float activations), then binarize the activations starting
from its weights. The networks of models.py name their layers by position
(conv1, s2b1_c1, s2b1_c1_bn, logits), so the ResNet(n) of every scheme and
option shares names; a layer is copied only if the source has a layer of
that name whose weights have the same shapes (a float Conv2D and a
BinaryConv2D both hold [kernel] or [kernel, bias]).
"""


def copy_matching_weights(model, source):
    """Copies weights into `model` from same-named, same-shaped layers of
    `source`. -> (copied layer names, skipped names with a reason)."""
    by_name = {layer.name: layer for layer in source.layers}
    copied, skipped = [], []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = by_name.get(layer.name)
        if other is None:
            skipped.append((layer.name, "not in the source"))
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] != [w.shape for w in weights]:
            skipped.append((layer.name, "other weight shapes"))
            continue
        layer.set_weights(theirs)
        copied.append(layer.name)
    return copied, skipped


def warm_start(model, source_path):
    """Loads a trained model (a run directory, checkpoint or .keras file:
    its best checkpoint) and copies its matching weights into `model`.
    Refuses a source that matches no layer (most likely the wrong file)."""
    from .exporter import load_trained
    source = load_trained(source_path, "--init-from")
    copied, skipped = copy_matching_weights(model, source)
    if not copied:
        raise SystemExit(f"--init-from {source_path}: no layer of the same name and "
                         f"weight shapes in {source.name}")
    print(f"initialised {len(copied)} layers from {source_path}"
          + (f"; {len(skipped)} kept their fresh weights: "
             + ", ".join(f"{n} ({why})" for n, why in skipped) if skipped else ""),
          flush=True)
    return copied, skipped
