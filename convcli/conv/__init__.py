"""The convolution library: NumPy only, no images, no command line.

- :mod:`~convcli.conv.operations`: ``conv2d`` and its output shape;
- :mod:`~convcli.conv.transposed`: ``conv_transpose2d`` and its output shape;
- :mod:`~convcli.conv.backward`: ``conv2d_backward``;
- :mod:`~convcli.conv.geometry`: every argument validated once, the output-size formula;
- :mod:`~convcli.conv.padding`: padding specs and the padding modes, in closed form;
- :mod:`~convcli.conv.gather`: only the rows and columns a huge stride or dilation reads;
- :mod:`~convcli.conv.memory`: what this process may allocate;
- :mod:`~convcli.conv.engines`: the tiled paths (rows, taps, separable, fft) behind them.

The public names are re-exported by :mod:`convcli` itself.
"""
