"""GAN objectives and reconstruction losses (filled in below)."""
