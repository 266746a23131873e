// models/gridding_artefacts.h: a direct measure of gridding artefacts in dense predictions, the segmentation
// analogue of the GAN checkerboard strength (models/eval/gan_eval.h).
//
// Definition (grid_energy_share). Maps x[c, i, j], c < C, i < H, j < W, and a period r >= 2 (the dilation
// rate whose sub-lattices a stack may see separately). The maps are cropped to H' = r * floor(H / r) rows
// and W' = r * floor(W / r) columns from the top left (so the period divides the size), and each channel's
// mean over the crop is subtracted. With X_c(u, v) the 2-D DFT of channel c over the crop, the grid
// frequencies of period r are the (u, v) with u a multiple of H'/r and v a multiple of W'/r (every
// frequency whose period divides r, in both axes), the DC term (0, 0) excluded (it is 0 after the mean
// removal). The score is
//
//     share_r(x) = sum_c sum_{(u,v) grid, not DC} |X_c(u, v)|^2  /  sum_c sum_{all (u,v)} |X_c(u, v)|^2
//
// in [0, 1]: 1 when every channel is a pure r-periodic pattern (a dotted sub-lattice), ~0 for smooth maps,
// (r^2 - 1) / (H'W' - 1) in expectation for white noise. A map that is constant in every channel scores 0.
//
// It is computed without a DFT, through the identity (Parseval on the r x r phase grid): with P_c(a, b)
// the mean of channel c over the pixels i = a, j = b (mod r) and m_c its mean, n = H'W' / r^2 pixels per
// phase,
//     sum over grid frequencies |X_c|^2 = H'W' * n * sum_{a,b} (P_c(a,b) - m_c)^2,
//     sum over all frequencies  |X_c|^2 = H'W' * sum_{i,j} (x_c(i,j) - m_c)^2,
// so share_r = n * sum_c sum_{a,b} (P_c - m_c)^2 / sum_c sum_{i,j} (x_c - m_c)^2: the phase-mean variance over
// the pixel variance (tests/test_gridding_artefacts.cpp checks it against a direct DFT). Sums are in double,
// in a fixed order (channel, row, column), so the result does not depend on threads.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convlab {

// The share of spectral energy at the grid frequencies of period r of maps [C, H, W] stored contiguously
// (see above). Throws convlab::Error for r < 2, a size that is not C*H*W, or H or W smaller than r.
double grid_energy_share(const float* maps, int64_t C, int64_t H, int64_t W, int64_t r);

// The same for sample `b` of a [N, C, H, W] tensor.
double grid_energy_share(const Tensor& batch, int64_t b, int64_t r);

// The grid-frequency component of channel c of maps [C, H, W] (period r): the phase means minus the channel
// mean, tiled over the crop H' x W' (row-major, H' * W' values). Its energy over the crop's energy is the
// channel's share; used to draw the artefact.
std::vector<double> grid_component(const float* maps, int64_t C, int64_t H, int64_t W, int64_t c, int64_t r);

}  // namespace convlab
