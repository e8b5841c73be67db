"""Compression with zoo models: lossless bits-back ANS (``bits_back``), lossy VQ-VAE codes (``vq_codes``),
the ``.vzc`` file (``container``), the command line's entry points (``files``) and the side-by-side report
against the standard codecs (``baselines``, ``report``)."""
