"""edgebnn training and export side (imports TensorFlow / Keras).

The runtime package `edgebnn` never imports this one; this package may
import the runtime to check exported files.

Modules: `layers` (binarized Keras layers), `models` (LeNet, ResNet(n),
AlexNet), `data` (MNIST / CIFAR-10 / image-folder loaders), `train`
(the `edgebnn-train` command), `curves` (learning-curve table and plot).
"""
