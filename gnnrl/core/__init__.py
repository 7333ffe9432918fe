"""gnnrl.core"""
