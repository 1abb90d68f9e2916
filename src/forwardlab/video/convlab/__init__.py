"""Convolution lab: the claims behind convolutional video networks, each turned into a measurement.

* `cost`: parameters and multiply-accumulates per layer, and one layer as 2D, 3D and (2+1)D;
* `receptive_field`: how far each stage sees in frames and pixels, and how much it downsamples time vs space;
* `equivariance`: how closely each stage's features follow a shift of the input in time and in space;
* `arrow_of_time`: which predictions change when a clip is played backwards;
* `filters`: the first layer's spatio-temporal filters as an animated grid;
* `compare`: the three small networks trained with the same budget, side by side;
* `report`: all of it on one self-contained HTML page.
"""
