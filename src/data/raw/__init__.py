"""RAW images: Bayer packing, camera files (rawpy), LED's physics-based noise model and the SID/ELD layouts."""
