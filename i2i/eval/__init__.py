"""Evaluation: metrics (FID/KID/PSNR/SSIM, feature extractors) and the HTML report."""
