"""Everything Fly.io: the Machines client, convergence, tunnels, hostnames, prices."""
