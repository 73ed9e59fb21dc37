"""participation: community reviews (社区评议), citizen points (积分), frontage duties (门前三包)
and QR-coded components (一码智管). Stall permits (四定) are checked by intake at filing time."""
