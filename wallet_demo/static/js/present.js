// The presentation side of the wallet (choose claims, QR code, relay) goes here.
