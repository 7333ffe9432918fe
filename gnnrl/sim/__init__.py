"""gnnrl.sim"""
