"""previewctl: per-pull-request preview backends on Fly.io, wired into Vercel previews."""

__version__ = "0.1.0"
