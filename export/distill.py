"""Knowledge distillation for edgebnn-train (--teacher): the student learns
from a trained network's outputs as well as the labels, the usual way to
close part of a binarized network's gap to its float twin (Hinton et al.
2015; Bi-Real / Real-to-Binary / ReActNet distil from a float teacher).

Labels and teacher logits travel together as y = [label, logits...], so the
model, its optimizer and checkpoints are the plain ones (a run can be
resumed with or without a teacher) and Keras's fit loop is unchanged:
    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T))
           + (1 - alpha) * cross-entropy(label, s)
The teacher runs in inference mode on the same augmented batch the student
sees."""


def attach_teacher(ds, teacher):
    """(x, label) batches -> (x, [label, teacher logits]) batches."""
    import tensorflow as tf

    def add(x, y):
        t = tf.cast(teacher(x, training=False), tf.float32)
        return x, tf.concat([tf.cast(tf.reshape(y, (-1, 1)), tf.float32), t], axis=1)

    return ds.map(add)


def distill_loss(alpha, temperature):
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        label = ops.cast(y_true[:, 0], "int32")
        t = y_true[:, 1:] / temperature
        s = y_pred / temperature
        kl = ops.sum(ops.softmax(t) * (ops.log_softmax(t) - ops.log_softmax(s)), axis=-1)
        ce = keras.losses.sparse_categorical_crossentropy(label, y_pred, from_logits=True)
        return alpha * temperature ** 2 * kl + (1 - alpha) * ce

    return loss


def accuracy(y_true, y_pred):
    """Top-1 accuracy against the label column (named so that Keras logs
    'accuracy' / 'val_accuracy' as without a teacher)."""
    import keras
    return keras.metrics.sparse_categorical_accuracy(y_true[:, :1], y_pred)


def load_teacher(source, classes):
    """A trained model (what `edgebnn export` takes: a run directory, a
    checkpoint, a .keras file), frozen; its output must be `classes` logits."""
    from .exporter import load_trained
    teacher = load_trained(source, "--teacher")
    teacher.trainable = False
    out = teacher.outputs[0].shape[-1]
    if out != classes:
        raise SystemExit(f"--teacher {source}: {out} outputs, the data has {classes} classes")
    return teacher
