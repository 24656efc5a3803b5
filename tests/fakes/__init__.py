"""Faithful fakes of what cannot run here: the Fly Machines API, flyctl, Vercel, GitHub."""
